// The state and submit of a silence form (one-shot or recurring): matchers and comment checked in the page first.
import { useState } from 'preact/hooks';
import { errText, silenceInput, type SilenceMatcher } from '../silences';

/** ``create`` gets the parsed matchers and the comment, and answers the message for ``onDone`` (it may throw
 * with what else to fix); a failure shows as "``failed``: reason". */
export function useSilenceForm(initial: string, failed: string, create: (m: SilenceMatcher[], comment: string) => Promise<string>, onDone: (msg: string) => void) {
  const [matchers, setMatchers] = useState(initial);
  const [comment, setComment] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    let parsed;
    try {
      parsed = silenceInput(matchers, comment);
    } catch (err) {
      setError(errText(err));
      return;
    }
    setBusy(true);
    try {
      onDone(await create(parsed, comment));
    } catch (err) {
      setError(`${failed}: ${errText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return { matchers, setMatchers, comment, setComment, error, busy, submit };
}
