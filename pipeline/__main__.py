"""``python -m pipeline`` runs the CLI."""

from onnxpipe.pipeline.cli import main

main()
