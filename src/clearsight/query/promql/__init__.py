"""PromQL: lexer/parser (parser.py -> ast.py) and the vectorized engine (engine.py)."""
