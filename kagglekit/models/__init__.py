"""Model building blocks: pretrained backbones and the layers kagglekit puts on them."""
