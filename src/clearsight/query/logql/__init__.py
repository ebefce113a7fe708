"""LogQL: parser (``parser.py``, tree ``ast.py``, printer ``printer.py``), pipeline stages
(``stages.py``, ``template.py``, ``pattern.py``, ``ipmatch.py``, ``units.py``), the ``| json``
store prefilter (``prefilter.py``), evaluation (``evaluator.py``, ``range_agg.py``) and the
detected fields / patterns of lines (``discovery.py``)."""
