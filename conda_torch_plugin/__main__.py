"""``python -m conda_torch_plugin``: the same CLI as ``conda torch-env``."""

from conda_torch_plugin.cli import run

if __name__ == "__main__":
    run()
