import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { bracketMatching, HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { lintKeymap } from '@codemirror/lint';
import { EditorState, type Extension } from '@codemirror/state';
import { EditorView, keymap, placeholder, tooltips } from '@codemirror/view';
import { tags } from '@lezer/highlight';
import { useEffect, useRef } from 'preact/hooks';

// Colours come from CSS variables so both themes keep readable contrast.
const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: 'var(--hl-keyword)' },
  { tag: [tags.function(tags.variableName), tags.function(tags.name)], color: 'var(--hl-function)' },
  { tag: [tags.number, tags.unit], color: 'var(--hl-number)' },
  { tag: tags.string, color: 'var(--hl-string)' },
  { tag: [tags.labelName, tags.propertyName], color: 'var(--hl-label)' },
  { tag: tags.operator, color: 'var(--hl-operator)' },
  { tag: tags.comment, color: 'var(--fg-muted)', fontStyle: 'italic' },
  { tag: tags.invalid, color: 'var(--danger)' },
]);

interface Props {
  value: string;
  label: string;
  /** the query language: parser, completion and linter */
  language: Extension;
  placeholderText: string;
  onChange: (v: string) => void;
  onRun: () => void;
}

/** A one-query code editor (uncontrolled: `value` is the initial text; remount it, with a new key, to replace
 * the text from outside, since syncing every render's value back would fight fast typing). Enter (or
 * Shift/Ctrl+Enter) runs; Enter picks a completion while the list is open. */
export function CodeEditor({ value, label, language, placeholderText, onChange, onRun }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const cb = useRef({ onChange, onRun });
  cb.current = { onChange, onRun };

  useEffect(() => {
    if (!box.current) return undefined;
    const run = () => {
      cb.current.onRun();
      return true;
    };
    const v = new EditorView({
      parent: box.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          history(),
          closeBrackets(),
          bracketMatching(),
          autocompletion(),
          tooltips({ parent: document.body }),
          syntaxHighlighting(highlight),
          placeholder(placeholderText),
          keymap.of([
            { key: 'Enter', run },
            { key: 'Shift-Enter', run },
            { key: 'Mod-Enter', run },
            ...closeBracketsKeymap,
            ...defaultKeymap,
            ...historyKeymap,
            ...completionKeymap,
            ...lintKeymap,
          ]),
          EditorView.contentAttributes.of({ 'aria-label': label }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) cb.current.onChange(u.state.doc.toString());
          }),
          language,
        ],
      }),
    });
    return () => v.destroy();
  }, []);

  return <div ref={box} class="code-editor" />;
}
