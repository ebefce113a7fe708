"""PromQL lexer.

Turns a query string into a list of :class:`Token`. Like Prometheus' lexer it is modal: inside
``{...}`` every word is a plain identifier (so keywords work as label names), inside ``[...]`` only
duration-expression tokens are allowed, and elsewhere keywords (case-insensitive) are recognised.

A lexing error does not raise: it ends the token list with an ``ERROR`` token carrying the message,
so the parser reports a syntax error found *before* it first, the way Prometheus' lazy lexer does.
Positions are 0-based character offsets into the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Token kinds. Punctuation and operators use their own text as kind.
NUMBER = "NUMBER"
DURATION = "DURATION"
STRING = "STRING"
IDENTIFIER = "IDENTIFIER"
METRIC_IDENTIFIER = "METRIC_IDENTIFIER"
KEYWORD = "KEYWORD"
EOF = "EOF"
ERROR = "ERROR"

OPERATOR_KINDS = frozenset({
    "+", "-", "*", "/", "%", "^", "==", "!=", "<=", "<", ">=", ">", "=~", "!~", "@",
    "</", ">/",
})

# Keywords, looked up lower-cased (PromQL keywords are case-insensitive).
SET_OP_KEYWORDS = frozenset({"and", "or", "unless"})
AGGREGATORS = frozenset({
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile", "limitk", "limit_ratio",
})
MODIFIER_KEYWORDS = frozenset({
    "offset", "smoothed", "anchored", "by", "without", "on", "ignoring", "group_left",
    "group_right", "fill", "fill_left", "fill_right", "bool",
})
PREPROCESSORS = frozenset({"start", "end", "step", "range", "max_of", "min_of"})
KEYWORDS = SET_OP_KEYWORDS | {"atan2"} | AGGREGATORS | MODIFIER_KEYWORDS | PREPROCESSORS
_FILL_KEYWORDS = frozenset({"fill", "fill_left", "fill_right"})
_DURATION_KEYWORDS = frozenset({"step", "range", "max_of", "min_of"})


@dataclass(slots=True)
class Token:
    """A lexed token; treat as immutable."""

    kind: str
    text: str  # raw source text (the error message for ERROR tokens)
    pos: int
    value: str = ""  # lower-cased keyword for KEYWORD tokens

    @property
    def end(self) -> int:
        return self.pos + len(self.text) if self.kind != ERROR else self.pos

    def desc(self) -> str:
        """Describes the token the way Prometheus' error messages do."""
        k = self.kind
        if k == EOF:
            return "end of input"
        if k == ERROR:
            return self.text
        if k == IDENTIFIER:
            return f"identifier {_go_quote(self.text)}"
        if k == METRIC_IDENTIFIER:
            return f"metric identifier {_go_quote(self.text)}"
        if k == KEYWORD:
            if self.value in PREPROCESSORS:
                return _go_quote(self.text)
            if self.value in SET_OP_KEYWORDS or self.value == "atan2":
                return f"<op:{self.text}>"
            if self.value in AGGREGATORS:
                return f"<aggr:{self.text}>"
            return f"<{self.text}>"
        if k in OPERATOR_KINDS:
            return f"<op:{self.text}>"
        if k == NUMBER:
            return f"number {_short(self.text)}"
        if k == DURATION:
            return f"duration {_short(self.text)}"
        if k == STRING:
            return f"string {_short(self.text)}"
        return _go_quote(self.text)


def _short(s: str) -> str:
    if len(s) > 10:
        return _go_quote(s[:10]) + "..."
    return _go_quote(s)


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote(s: str) -> str:
    """Quotes ``s`` like Go's ``strconv.Quote`` (printable Unicode kept as is)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif 0xDC80 <= o < 0xDD00:  # a non-UTF-8 byte kept by surrogateescape
            out.append(f"\\x{o - 0xDC00:02x}")
        elif 0xD800 <= o < 0xE000:
            out.append("\\ufffd")
        elif not ch.isprintable() and ch != " ":
            if o < 0x80:
                out.append(f"\\x{o:02x}")
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _char_desc(ch: str) -> str:
    """Go's %q of a rune."""
    if ch == "'":
        return "'\\''"
    if ch == "\\":
        return "'\\\\'"
    if ch == '"':
        return "'\"'"
    q = go_quote(ch)[1:-1]
    return f"'{q}'"


def _unicode_desc(ch: str) -> str:
    """Go's %#U of a rune."""
    o = ord(ch)
    if ch.isprintable():
        return f"U+{o:04X} '{ch}'"
    return f"U+{o:04X}"


def is_space(ch: str) -> bool:
    return ch in " \t\n\r"


def is_alpha(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def is_alnum(ch: str) -> bool:
    return is_alpha(ch) or is_digit(ch)


_SPACES = re.compile(r"[ \t\n\r]+")
_WORD = re.compile(r"[a-zA-Z0-9_]*")
_WORD_WITH_COLON = re.compile(r"[a-zA-Z0-9_:]*")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _LexError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class Lexer:
    """Tokenizes a whole query. ``series_desc`` is unused by the expression grammar and reserved."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.start = 0
        self.tokens: list[Token] = []
        self.paren_depth = 0
        self.brace_open = False
        self.bracket_open = False
        self.got_colon = False
        self.got_duration = False
        # Prometheus lexes the start of a bracket in duration-expression mode and switches to the
        # statement lexer (with bracket rules) after the first number or duration.
        self.bracket_stmt = False

    # -- helpers --------------------------------------------------------------------------------
    def _peek(self, off: int = 0) -> str:
        j = self.i + off
        return self.s[j] if j < self.n else ""

    def _emit(self, kind: str, value: str = "") -> None:
        self.tokens.append(Token(kind, self.s[self.start:self.i], self.start, value))
        self.start = self.i

    def _error(self, msg: str) -> _LexError:
        return _LexError(msg, self.start)

    def tokenize(self) -> list[Token]:
        try:
            while True:
                if self.brace_open:
                    done = self._lex_inside_braces()
                elif self.bracket_open and not self.bracket_stmt:
                    done = self._lex_duration_expr()
                else:
                    done = self._lex_statement()
                if done:
                    break
        except _LexError as e:
            self.tokens.append(Token(ERROR, e.message, e.pos))
        return self.tokens

    def _skip_comment(self) -> bool:
        if self.i < self.n and self.s[self.i] == "#":
            while self.i < self.n and self.s[self.i] not in "\r\n":
                self.i += 1
            self.start = self.i  # comments are dropped
            return True
        return False

    def _skip_spaces(self) -> bool:
        if self.i < self.n and self.s[self.i] in " \t\n\r":
            m = _SPACES.match(self.s, self.i)
            assert m is not None
            self.i = m.end()
            self.start = self.i
            return True
        return False

    # -- states ---------------------------------------------------------------------------------
    def _lex_statement(self) -> bool:
        if self._skip_comment() or self._skip_spaces():
            return False
        self.start = self.i
        if self.i >= self.n:
            if self.paren_depth != 0:
                raise self._error("unclosed left parenthesis")
            if self.bracket_open:
                raise self._error("unclosed left bracket")
            self.tokens.append(Token(EOF, "", self.n))
            return True
        ch = self.s[self.i]
        self.i += 1
        nxt = self._peek()
        if ch in ",*/%+-^@":
            self._emit(ch)
        elif ch == "=":
            if nxt == "=":
                self.i += 1
                self._emit("==")
            elif nxt == "~":
                raise self._error(f"unexpected character after '=': {_char_desc(nxt)}")
            else:
                self._emit("=")
        elif ch == "!":
            if nxt != "=":
                raise self._error(f"unexpected character after '!': {_char_desc(nxt) if nxt else 'U+FFFFFFFF'}")
            self.i += 1
            self._emit("!=")
        elif ch in "<>":
            if nxt == "=":
                self.i += 1
                self._emit(ch + "=")
            elif nxt == "/":
                self.i += 1
                self._emit(ch + "/")
            else:
                self._emit(ch)
        elif is_digit(ch) or (ch == "." and is_digit(nxt)):
            self.i -= 1
            self._lex_number_or_duration()
        elif ch in "\"'":
            self._lex_string(ch)
        elif ch == "`":
            self._lex_raw_string()
        elif (is_alpha(ch) or ch == ":") and self.bracket_open:
            self._lex_in_bracket_word(ch)
        elif is_alpha(ch) or ch == ":":
            self.i -= 1
            self._lex_keyword_or_identifier()
        elif ch == "(":
            self._emit("(")
            self.paren_depth += 1
        elif ch == ")":
            self._emit(")")
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.tokens.pop()  # Prometheus' error item replaces the emitted one
                raise self._error("unexpected right parenthesis ')'")
        elif ch == "{":
            self._emit("{")
            self.brace_open = True
        elif ch == "}":
            raise self._error("unexpected character: '}'")
        elif ch == "[":
            if self.bracket_open:
                raise self._error("unexpected left bracket '['")
            self.got_colon = False
            self.got_duration = False
            self._emit("[")
            self._skip_spaces()
            self.bracket_open = True
            self.bracket_stmt = False
        elif ch == "]":
            if not self.bracket_open:
                raise self._error("unexpected right bracket ']'")
            self._emit("]")
            self.bracket_open = False
            self.bracket_stmt = False
        else:
            raise self._error(f"unexpected character: {_char_desc(ch)}")
        return False

    def _lex_inside_braces(self) -> bool:
        if self._skip_comment() or self._skip_spaces():
            return False
        self.start = self.i
        if self.i >= self.n:
            raise self._error("unexpected end of input inside braces")
        ch = self.s[self.i]
        self.i += 1
        if is_alpha(ch):
            m = _WORD.match(self.s, self.i)
            assert m is not None
            self.i = m.end()
            self._emit(IDENTIFIER)
        elif ch == ",":
            self._emit(",")
        elif ch in "\"'":
            self._lex_string(ch)
        elif ch == "`":
            self._lex_raw_string()
        elif ch == "=":
            if self._peek() == "~":
                self.i += 1
                self._emit("=~")
            else:
                self._emit("=")
        elif ch == "!":
            nxt = self._peek()
            if nxt == "~":
                self.i += 1
                self._emit("!~")
            elif nxt == "=":
                self.i += 1
                self._emit("!=")
            else:
                raise self._error(f"unexpected character after '!' inside braces: {_char_desc(nxt) if nxt else 'U+FFFFFFFF'}")
        elif ch == "{":
            raise self._error("unexpected left brace '{'")
        elif ch == "}":
            self._emit("}")
            self.brace_open = False
        else:
            raise self._error(f"unexpected character inside braces: {_char_desc(ch)}")
        return False

    def _lex_duration_expr(self) -> bool:
        if self._skip_spaces():
            return False
        self.start = self.i
        if self.i >= self.n:
            raise self._error("unexpected end of input in duration expression")
        ch = self.s[self.i]
        self.i += 1
        if ch == "]":
            self._emit("]")
            self.bracket_open = False
            self.got_colon = False
        elif ch == ":":
            if self.tokens and self.tokens[-1].kind == "[":
                self.start = self.i
                raise self._error("unexpected colon before duration in duration expression")
            if self.got_colon:
                self.start = self.i
                raise self._error("unexpected repeated colon in duration expression")
            self._emit(":")
            self.got_colon = True
        elif ch == "(":
            self._emit("(")
            self.paren_depth += 1
        elif ch == ")":
            self._emit(")")
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.tokens.pop()
                raise self._error("unexpected right parenthesis ')'")
        elif ch in "+-*/%^,":
            self._emit(ch)
        elif ch.lower() in "srm":  # step, range, min_of, max_of
            j = self.i
            while j < self.n and is_alpha(self.s[j]):
                j += 1
            word = self.s[self.start:j].lower()
            if word in _DURATION_KEYWORDS:
                self.i = j
                self._emit(KEYWORD, word)
            else:
                raise self._error(f"unexpected character in duration expression: {_char_desc(ch)}")
        elif is_digit(ch) or (ch == "." and is_digit(self._peek())):
            self.i -= 1
            self.got_duration = True
            self._lex_number_or_duration()
            self.bracket_stmt = True
        else:
            raise self._error(f"unexpected character in duration expression: {_char_desc(ch)}")
        return False

    # -- tokens ---------------------------------------------------------------------------------
    def _lex_keyword_or_identifier(self) -> None:
        m = _WORD_WITH_COLON.match(self.s, self.i)
        assert m is not None
        j = self.i = m.end()
        word = self.s[self.start:j]
        low = word.lower()
        if low in ("inf", "nan"):
            self._emit(NUMBER)
        elif low in KEYWORDS:
            if low in _FILL_KEYWORDS and not self._followed_by_paren():
                self._emit(IDENTIFIER)
            else:
                self._emit(KEYWORD, low)
        elif ":" in word:
            self._emit(METRIC_IDENTIFIER)
        else:
            self._emit(IDENTIFIER)

    def _lex_in_bracket_word(self, ch: str) -> None:
        """A letter or colon in statement mode while a bracket is open."""
        if ch == ":":
            if self.got_colon:
                raise self._error("unexpected colon ':'")
            self._emit(":")
            self.got_colon = True
            return
        j = self.i
        while j < self.n and is_alpha(self.s[j]):
            j += 1
        word = self.s[self.start:j].lower()
        if word in _DURATION_KEYWORDS:
            self.i = j
            self._emit(KEYWORD, word)
            return
        raise self._error(f"unexpected character: {_char_desc(ch)}, expected ':'")

    def _followed_by_paren(self) -> bool:
        j = self.i
        while j < self.n and is_space(self.s[j]):
            j += 1
        return j < self.n and self.s[j] == "("

    def _lex_string(self, quote: str) -> None:
        s, n = self.s, self.n
        # fast path: no escapes, newline or surrogate before the closing quote
        end = s.find(quote, self.i)
        if end >= 0:
            body = s[self.i:end]
            if "\\" not in body and "\n" not in body and not _SURROGATE.search(body):
                self.i = end + 1
                self._emit(STRING)
                return
        while True:
            if self.i >= n:
                raise self._error("unterminated quoted string")
            ch = s[self.i]
            self.i += 1
            if ch == "\\":
                self._lex_escape(quote)
            elif ch == "\n":
                raise self._error("unterminated quoted string")
            elif 0xD800 <= ord(ch) < 0xE000:
                raise self._error("invalid UTF-8 rune")
            elif ch == quote:
                break
        self._emit(STRING)

    def _lex_escape(self, quote: str) -> None:
        if self.i >= self.n:
            raise self._error("escape sequence not terminated")
        ch = self.s[self.i]
        self.i += 1
        if ch in "abfnrtv\\" or ch == quote:
            return
        if ch in "01234567":
            count, base, max_val = 3, 8, 255
            self.i -= 1
        elif ch == "x":
            count, base, max_val = 2, 16, 255
        elif ch == "u":
            count, base, max_val = 4, 16, 0x10FFFF
        elif ch == "U":
            count, base, max_val = 8, 16, 0x10FFFF
        else:
            raise self._error(f"unknown escape sequence {_unicode_desc(ch)}")
        x = 0
        for _ in range(count):
            if self.i >= self.n:
                raise self._error("escape sequence not terminated")
            c = self.s[self.i]
            d = int(c, 16) if c in "0123456789abcdefABCDEF" else 16
            if d >= base:
                raise self._error(f"illegal character {_unicode_desc(c)} in escape sequence")
            self.i += 1
            x = x * base + d
        if x > max_val or 0xD800 <= x < 0xE000:
            raise self._error("escape sequence is an invalid Unicode code point")

    def _lex_raw_string(self) -> None:
        while True:
            if self.i >= self.n:
                raise self._error("unterminated raw string")
            ch = self.s[self.i]
            self.i += 1
            if 0xD800 <= ord(ch) < 0xE000:
                raise self._error("invalid UTF-8 rune")
            if ch == "`":
                break
        self._emit(STRING)

    def _lex_number_or_duration(self) -> None:
        if self._scan_number():
            self._emit(NUMBER)
            return
        if self._accept_remaining_duration():
            self.i -= 1 if self._last_accept_consumed else 0
            self._emit(DURATION)
            return
        raise self._error(f"bad number or duration syntax: {_go_quote(self.s[self.start:self.i])}")

    def _accept(self, chars: str) -> bool:
        if self.i < self.n and self.s[self.i] in chars:
            self.i += 1
            return True
        return False

    def _is(self, chars: str) -> bool:
        return self.i < self.n and self.s[self.i] in chars

    def _scan_number(self) -> bool:
        """Scans the longest number-looking prefix; False when it is not a complete number."""
        initial = self.i
        digits = "0123456789"
        if self._accept("0") and self._accept("xX"):
            self._accept("_")
            digits = "0123456789abcdefABCDEF"
        self._accept(".")
        self._accept(digits)
        dot = exp = False
        while self._is(digits + "._eE"):
            if self._is("."):
                if dot:
                    self._accept(".")
                    return False
            if self._is("eE") and len(digits) == 10:
                if exp:
                    self._accept("eE")
                    return False
            if self._accept("."):
                dot = True
                if self._accept("_."):
                    return False
                if len(digits) > 10:
                    return False
                continue
            if len(digits) == 10 and self._accept("eE"):
                exp = True
                self._accept("+-")
                if self._accept("._eE") or self.i >= self.n:
                    return False
                continue
            if self._accept("_"):
                if self._accept("._eE") or self.i >= self.n:
                    return False
                continue
            while self._accept(digits):
                pass
        if self.i == initial:
            return False
        return not (self.i < self.n and is_alnum(self.s[self.i]))

    _last_accept_consumed = True

    def _accept_remaining_duration(self) -> bool:
        if not self._accept("smhdwy"):
            return False
        self._accept("s")
        while self._accept(digits := "0123456789"):
            while self._accept(digits):
                pass
            if not self._accept("smhdw"):
                return False
            self._accept("s")
        # The next rune must not be alphanumeric; Prometheus consumes it and backs up.
        if self.i < self.n:
            ch = self.s[self.i]
            self.i += 1
            self._last_accept_consumed = True
            return not is_alnum(ch)
        self._last_accept_consumed = False
        return True


def tokenize(text: str) -> list[Token]:
    """Lexes a whole expression. The list ends with an EOF or an ERROR token."""
    return Lexer(text).tokenize()
