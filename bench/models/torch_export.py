"""Train ``digits_cnn_torch`` on the digits and save it as ONNX: the ``.onnx`` file that
``suites/frameworks.yaml`` benchmarks (made here, nothing downloaded).

``python -m bench.models.torch_export OUT.onnx [--epochs N] [--seed S]`` trains with the same
data-set split (seed 0) and settings as the suite's PyTorch entry, then exports with
:func:`bench.models.imported.export_onnx`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import registry
from bench.models import imported
from bench.models.train import TrainSpec


def export_digits(out: Path, epochs: int = 100, seed: int = 0, batch_size: int = 32) -> int:
    """Train and export; returns the model's parameter count."""
    plugin = registry.datasets.get("digits")
    data = plugin.load(plugin.params.model_validate({}), 0)
    builder = registry.models.get("digits_cnn_torch")
    module = imported.train_torch(builder, {}, data,
                                  TrainSpec(epochs=epochs, batch_size=batch_size, seed=seed))
    imported.export_onnx(module, data.input_shape, out)
    return imported.parameter_count(module)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.models.torch_export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .onnx file to write")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    args = parser.parse_args(argv)
    params = export_digits(args.out, args.epochs, args.seed)
    print(f"wrote {args.out} ({params:,} parameters, {args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
