"""physlite's reader of PHYSLITE files: from the file's bytes to branch metadata and awkward arrays.

- :mod:`physlite.reader.file`: an open file (``physlite.open``), its branches and ``arrays()``;
- :mod:`physlite.reader.catalogue`: every branch's type, decoder layout, baskets and sizes, cached per file version;
- :mod:`physlite.reader.tree_metadata`: the TTree's branch records read straight from its bytes;
- :mod:`physlite.reader.uproot_records`: the same records from uproot's parse, the fallback for class versions
  physlite's own reader does not know;
- :mod:`physlite.reader.branch_types`: a record's C++ type and decoder layout;
- :mod:`physlite.reader.event_format`: the raw bytes of the file's EventFormat (link hash -> container).

Example:
    >>> from physlite.reader.file import open
    >>> with open("DAOD_PHYSLITE.art.pool.root") as f:  # doctest: +SKIP
    ...     f.num_entries
    40
"""
