"""Stage 1 of the data flow: audio input, corpus recipes, manifests and split protocols, prepare, download."""
