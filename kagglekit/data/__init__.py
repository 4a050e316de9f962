"""Reading images and feeding them to models."""
