"""A run's config unpacked into each learner's hyperparameters: the one place a config section meets a learner.

Learners take named hyperparameters (scikit-learn style: ``HeadClassifier(dim, n, workdir, **head(config.train))``);
what a pipeline derives per fold (the workdir, the seed, the devices) it passes itself. Each learner's own
defaults are the config's defaults (``tests/test_common.py`` checks it).
"""

from __future__ import annotations

from kagglekit.core.config import RunConfig, TrainConfig


def head(train: TrainConfig) -> dict:
    """``HeadClassifier`` / ``MultiLabelHead``: the frozen-feature head."""
    return dict(epochs=train.head_epochs, learning_rate=train.head_lr, dropout=train.head_dropout, **_keras(train))


def top_blocks(config: RunConfig) -> dict:
    """``TopBlocksClassifier``: the first backbone's top blocks on its cut activations."""
    train = config.train
    return dict(epochs=train.top_blocks_epochs, learning_rate=train.top_blocks_lr, dropout=train.head_dropout,
                weights_dir=config.weights_dir, **_keras(train))


def _keras(train: TrainConfig) -> dict:
    return dict(optimizer=train.optimizer, batch_size=train.batch_size, patience=train.patience,
                label_smoothing=train.label_smoothing)


def finetuned(config: RunConfig) -> dict:
    """``FineTunedClassifier``: whole-network fine-tuning of the first backbone."""
    ft = config.finetune
    return dict(epochs=ft.epochs, head_epochs=ft.head_epochs, top_epochs=ft.top_epochs, optimizer=ft.optimizer,
                lr=ft.lr, lower_lr_factor=ft.lower_lr_factor, warmup_fraction=ft.warmup_fraction,
                weight_decay=ft.weight_decay, clipnorm=ft.clipnorm, ema=ft.ema, batch_size=ft.batch_size,
                dropout=ft.dropout, probe=ft.probe, progressive_scale=ft.progressive_scale,
                progressive_share=ft.progressive_share, freeze_stem=ft.freeze_stem, train_batchnorm=ft.train_batchnorm,
                augment=config.augment, label_smoothing=config.train.label_smoothing, weights_dir=config.weights_dir)


def segmenter(config: RunConfig) -> dict:
    """``Segmenter``: the first backbone as the encoder of ``segmentation.head``."""
    seg = config.segmentation
    return dict(head=seg.head, backbone=config.backbones[0], input_size=tuple(seg.input_size),
                freeze_encoder=seg.freeze_encoder, epochs=seg.epochs, batch_size=seg.batch_size, optimizer=seg.optimizer,
                lr=seg.lr, encoder_lr_factor=seg.encoder_lr_factor, weight_decay=seg.weight_decay,
                dice_weight=seg.dice_weight, hflip=seg.hflip, scale=seg.scale, stream=config.stream, seed=config.seed,
                weights_dir=config.weights_dir)


def extractor(config: RunConfig) -> dict:
    """``FeatureExtractor``: what its features (and its augmented views' draws) depend on besides the backbone."""
    return dict(weights_dir=config.weights_dir, augment=config.augment, seed=config.seed)
