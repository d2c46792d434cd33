"""Evaluation metrics, offline: the project's feature network (`featurenet`), distribution
metrics on its features (`distribution`, and torchmetrics for FID/KID/IS in `evaluate`), and
mode coverage on the 2-D toy distributions (`toy`)."""
