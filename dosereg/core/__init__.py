"""The dose core: Django-free vocabulary and pure computations every layer above reads.

- ``quantities``: the quantity catalogue (names, labels, units, conversions, sign and range, display rules);
- ``display``: the one formatter of numbers and units for pages, PDFs, exports and texts;
- ``dose_report``: the parser's output types, the registry's input contract;
- ``versions``: report identity and versions as a pure function;
- ``sanity``: value checks at the border (non-finite, negative, implausible, device totals);
- ``gc_pause``: the cyclic garbage collector paused around parsing and recording.

Nothing here imports Django or another DoseReg package (checked by the import contract in ``.importlinter``).
"""
