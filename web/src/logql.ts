// LogQL for CodeMirror, built like codemirror-promql: Grafana's Lezer grammar (@grafana/lezer-logql) for
// highlighting and inline syntax errors, and completion of stream label names and values from this
// server's Loki API (/loki/api/v1/labels, /loki/api/v1/label/<name>/values), functions and parsers.
import { type CompletionContext, type CompletionResult, type Completion } from '@codemirror/autocomplete';
import { LRLanguage, LanguageSupport, syntaxTree } from '@codemirror/language';
import { linter, type Diagnostic } from '@codemirror/lint';
import { styleTags, tags as t } from '@lezer/highlight';
import { FUNCTIONS, parser, RANGE_VEC_FUNCTIONS } from '@grafana/lezer-logql';
import { getJSON } from './api';

const language = LRLanguage.define({
  name: 'logql',
  parser: parser.configure({
    props: [
      styleTags({
        'Json Logfmt Unpack Pattern Regexp Unwrap LabelFormat LineFormat LabelReplace Decolorize Drop Keep': t.keyword,
        'By Without Bool On Ignoring GroupLeft GroupRight Offset And Or Unless': t.keyword,
        'Sum Avg Count Max Min Stddev Stdvar Bottomk Topk Sort Sort_Desc Approx_Topk Vector': t.function(t.variableName),
        'RangeOp/...': t.function(t.variableName),
        String: t.string,
        'Number Duration Bytes Range/...': t.number,
        Identifier: t.labelName,
        'Eq Neq Re Nre PipeExact PipeMatch PipePattern Npa Pipe Gtr Gte Lss Lte Eql': t.operator,
        LineComment: t.lineComment,
      }),
    ],
  }),
  languageData: { closeBrackets: { brackets: ['(', '[', '{', '"', '`'] } },
});

/** Where the parse failed (the grammar's error nodes) as diagnostics. */
const syntaxLinter = linter((view) => {
  const out: Diagnostic[] = [];
  if (!view.state.doc.length) return out;
  syntaxTree(view.state).iterate({
    enter(n) {
      if (n.type.isError && out.length < 5) {
        const from = Math.min(n.from, view.state.doc.length - 1);
        out.push({ from, to: Math.max(n.to, from + 1), severity: 'error', message: 'LogQL syntax error here' });
      }
    },
  });
  return out;
});

const KEYWORDS: Completion[] = [
  ...['json', 'logfmt', 'unpack', 'pattern', 'regexp', 'line_format', 'label_format', 'unwrap', 'decolorize', 'drop', 'keep'].map((k) => ({
    label: k,
    type: 'keyword',
  })),
  ...['by', 'without', 'offset', 'and', 'or', 'unless'].map((k) => ({ label: k, type: 'keyword' })),
];
const FUNCS: Completion[] = [...RANGE_VEC_FUNCTIONS, ...FUNCTIONS].map((f) => ({
  label: f.label,
  type: 'function',
  detail: 'detail' in f ? String(f.detail) : undefined,
  info: f.documentation ? String(f.documentation) : undefined,
}));

const cache = new Map<string, { at: number; values: Promise<string[]> }>();
function cached(key: string, load: () => Promise<string[]>): Promise<string[]> {
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < 60_000) return hit.values;
  const values = load().catch(() => []);
  cache.set(key, { at: Date.now(), values });
  return values;
}
const since = () => ({ since: '6h' });
const labelNames = () =>
  cached('labels', async () => (await getJSON<{ data?: string[] }>('/loki/api/v1/labels', since())).data ?? []);
const labelValues = (name: string) =>
  cached(`values:${name}`, async () => (await getJSON<{ data?: string[] }>(`/loki/api/v1/label/${encodeURIComponent(name)}/values`, since())).data ?? []);

/** Inside `{...}` before the cursor: the selector's text so far, else null. */
function openSelector(before: string): string | null {
  const open = before.lastIndexOf('{');
  if (open < 0 || before.indexOf('}', open) >= 0) return null;
  const quotes = (before.slice(0, open).match(/"/g) ?? []).length;
  return quotes % 2 === 0 ? before.slice(open + 1) : null;
}

async function complete(ctx: CompletionContext): Promise<CompletionResult | null> {
  const before = ctx.state.sliceDoc(0, ctx.pos);
  const sel = openSelector(before);
  if (sel !== null) {
    const value = /([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(sel);
    if (value) {
      const values = await labelValues(value[1] ?? '');
      return { from: ctx.pos - (value[3] ?? '').length, options: values.map((v) => ({ label: v, type: 'text' })), validFor: /^[^"]*$/ };
    }
    const name = /(?:^|[,{\s])([A-Za-z_][A-Za-z0-9_.]*)?$/.exec(sel);
    if (name && (name[1] || ctx.explicit || /(^|,)\s*$/.test(sel))) {
      const names = await labelNames();
      return { from: ctx.pos - (name[1] ?? '').length, options: names.map((n) => ({ label: n, type: 'property' })), validFor: /^[A-Za-z0-9_.]*$/ };
    }
    return null;
  }
  const word = ctx.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
  if (!word && !ctx.explicit) return null;
  if (/"[^"]*$/.test(before.replace(/"(?:[^"\\]|\\.)*"/g, ''))) return null; // inside a string
  return { from: word ? word.from : ctx.pos, options: [...FUNCS, ...KEYWORDS], validFor: /^[A-Za-z0-9_]*$/ };
}

/** The LogQL editor support: language, completion and linter. */
export function logql(): LanguageSupport {
  return new LanguageSupport(language, [language.data.of({ autocomplete: complete }), syntaxLinter]);
}
