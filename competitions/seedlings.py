"""Kaggle "Plant Seedlings Classification": 12 species, micro-averaged F1, ``file,species``."""

from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.discovery import COMPETITIONS

SPECIES = [
    "Black-grass", "Charlock", "Cleavers", "Common Chickweed", "Common wheat", "Fat Hen",
    "Loose Silky-bent", "Maize", "Scentless Mayweed", "Shepherds Purse",
    "Small-flowered Cranesbill", "Sugar beet",
]

COMPETITIONS.register("seedlings", ClassFolderCompetition(
    name="seedlings",
    slug="plant-seedlings-classification",
    title="Plant Seedlings Classification",
    id_column="file",
    label_column="species",
    metric="micro_f1",
    declared_classes=SPECIES,
))
