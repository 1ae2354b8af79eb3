"""conda-lock's formats, read and written as conda-lock reads and writes them: environment.yml
and virtual-packages.yml (``envspec``), match specs (``matchspec``), the content hash,
conda-lock.yml (``lockfile``) and ``@EXPLICIT`` files (``explicit``)."""

# conda-lock's default name for the lock beside the environment file.
DEFAULT_LOCKFILE = "conda-lock.yml"
