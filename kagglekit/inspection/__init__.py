"""Understanding a trained run: where its networks look (Grad-CAM) and how easily they are fooled
(adversarial attacks)."""
