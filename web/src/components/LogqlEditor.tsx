import { logql } from '../logql';
import { CodeEditor } from './CodeEditor';

const support = logql();

interface Props {
  value: string;
  label: string;
  onChange: (v: string) => void;
  onRun: () => void;
}

/** The LogQL editor: highlighting and inline syntax errors, completion of stream labels and values from this
 * server, functions and parsers. Uncontrolled, see CodeEditor. */
export function LogqlEditor(props: Props) {
  return <CodeEditor {...props} language={support} placeholderText={'{service_name="api"} |= "error" (press Enter to run)'} />;
}
