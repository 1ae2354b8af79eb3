"""conda-lock's formats, read and written as conda-lock reads and writes them: environment.yml
and virtual-packages.yml (``envspec``), match specs (``matchspec``), the content hash,
conda-lock.yml (``lockfile``) and ``@EXPLICIT`` files (``explicit``)."""

# conda-lock's default names: the environment file, and the lock beside it.
ENVIRONMENT_FILENAME = "environment.yml"
DEFAULT_LOCKFILE = "conda-lock.yml"
