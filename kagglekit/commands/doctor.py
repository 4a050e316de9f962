"""``kagglekit doctor``: is this machine ready for a run? Backend, devices, weights, credentials, cache, disk.

Exits 1 when a problem would stop a run or a Kaggle command (each printed with its fix), 0 otherwise.
"""

from __future__ import annotations

from kagglekit.commands.options import InputPath, weights_folder
from kagglekit.core.config import RunConfig, from_dict, read_config_file
from kagglekit.upkeep.checks import PROBLEM, WARNING, Finding, backend_findings, cache_findings, \
    credentials_findings, weights_findings


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help="check backend, devices, weights, credentials, cache and disk")
    parser.add_argument("--backbone", help="backbone name(s) to check, comma separated "
                                           "(default: those of --config, else of the default run config)")
    parser.add_argument("--config", type=InputPath("file", "a run config YAML file"),
                        help="run config YAML whose backbones and weights folder to check")
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.add_argument("--offline", action="store_true",
                        help="there will be no internet: weights that would be downloaded count as missing")
    parser.set_defaults(func=main)


def main(args) -> int:
    config = from_dict(RunConfig, {**(read_config_file(args.config) if args.config else {}),
                                   **({"backbones": args.backbone} if args.backbone else {})}, where="doctor")
    weights_dir = args.weights_dir or config.weights_dir
    findings = [*backend_findings(), *weights_findings(config.backbones, weights_dir, args.offline),
                *credentials_findings(), *cache_findings()]
    for finding in findings:
        print(_line(finding))
    problems = sum(f.status == PROBLEM for f in findings)
    warnings = sum(f.status == WARNING for f in findings)
    print(f"not ready: {problems} problem(s), {warnings} warning(s)" if problems else
          f"ready ({warnings} warning(s))" if warnings else "ready")
    return 1 if problems else 0


def _line(finding: Finding) -> str:
    line = f"{finding.status.upper():8} {finding.topic:12} {finding.summary}"
    if finding.fix and finding.status != "ok":
        line += f"\n{'':21} fix: {finding.fix}"
    return line
