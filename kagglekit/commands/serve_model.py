"""``kagglekit serve-model RUN_DIR``: a finished run's model behind a REST endpoint (FastAPI on uvicorn).

Not ``kagglekit serve``, which hosts a local Kaggle *competition*; this hosts a trained *model*:
``POST /predict`` (multipart ``files``), ``GET /health``, ``GET /metadata``; docs at ``/docs``.
"""

from __future__ import annotations


from kagglekit.commands.options import integer, number, port, run_folder, weights_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve-model", help="serve a run's model over HTTP (POST /predict)")
    parser.add_argument("run_dir", type=run_folder, help="a run directory (submissions/<competition>/<run>)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=port, default=8000)
    parser.add_argument("--max-upload-mb", type=number(0), default=20, help="largest request body, in MB")
    parser.add_argument("--max-files", type=integer(1), default=64, help="most images in one request")
    parser.add_argument("--weights-dir", type=weights_folder, help="folder with pretrained weight files (offline)")
    parser.set_defaults(func=main)


def main(args) -> int:
    import uvicorn

    from kagglekit.serving.api import create_app
    from kagglekit.serving.predictor import load_predictor

    app = create_app(load_predictor(args.run_dir, args.weights_dir), int(args.max_upload_mb * 1024 * 1024),
                     args.max_files)
    print(f"serving {args.run_dir} on http://{args.host}:{args.port} (POST /predict, GET /metadata); Ctrl-C stops",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
