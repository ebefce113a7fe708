import { PromQLExtension } from '@prometheus-io/codemirror-promql';
import { CodeEditor } from './CodeEditor';

const promql = new PromQLExtension()
  .setComplete({
    remote: { url: '', httpMethod: 'GET', lookbackInterval: 12 * 60 * 60 * 1000, cache: { maxAge: 5 * 60 * 1000 } },
    maxMetricsMetadata: 10000,
  })
  .asExtension();

interface Props {
  value: string;
  label: string;
  onChange: (v: string) => void;
  onRun: () => void;
}

/** The PromQL editor: completion of metric names, labels, values and functions from this server's API, inline
 * syntax errors (the offline linter). Uncontrolled, see CodeEditor. */
export function PromqlEditor(props: Props) {
  return <CodeEditor {...props} language={promql} placeholderText="Expression (press Enter to run)" />;
}
