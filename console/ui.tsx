import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { takeMoved } from './router';
import { consoleConfig, isProblem, problemOf, type Problem } from './api';

/** One action's progress and outcome: `run` shows busy, then the outcome or the problem; what was typed stays. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState<string | null>(null);
  async function run(fn: () => Promise<string | null | void>) {
    setBusy(true);
    setProblem(null);
    setDone(null);
    try {
      setDone((await fn()) ?? null);
    } catch (err) {
      setProblem(isProblem(err) ? err : problemOf(undefined, undefined));
      if (!isProblem(err)) console.error(err);
    } finally {
      setBusy(false);
    }
  }
  return { busy, problem, done, run, setProblem, setDone };
}

/** The outcome of an action: an alert for a problem, a polite status for success. Always rendered, so screen readers hear changes. */
export function Outcome({ problem, done }: { problem: Problem | null; done?: string | null }) {
  return (
    <div class="outcome">
      <p role="alert" class={problem ? 'problem' : 'hidden'} data-code={problem?.code}>
        {problem?.sentence}
      </p>
      <p role="status" class={done ? 'done' : 'hidden'}>
        {done}
      </p>
    </div>
  );
}

/** The input attributes the console's fields use. */
interface InputProps {
  type?: 'text' | 'password' | 'email';
  autoComplete?: string;
  autoCapitalize?: 'off' | 'characters';
  autoFocus?: boolean;
  required?: boolean;
  spellcheck?: boolean;
  class?: string;
}

export function Field(props: { label: string; value: string; onValue: (v: string) => void; hint?: string } & InputProps) {
  const { label, value, onValue, hint, ...rest } = props;
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} value={value} onInput={(e) => onValue(e.currentTarget.value)} aria-describedby={hint ? `${id}-hint` : undefined} {...(rest as Record<string, unknown>)} />
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
    </div>
  );
}

export function Button(props: { busy?: boolean; busyLabel?: string; children: ComponentChildren } & ButtonHTMLAttributes) {
  const { busy, busyLabel, children, ...rest } = props;
  return (
    <button type="button" {...rest} disabled={busy || rest.disabled} aria-busy={busy ? 'true' : undefined}>
      {busy ? (busyLabel ?? 'Working…') : children}
    </button>
  );
}

/** A value shown once (an API key, a recovery code), with a copy button. */
export function Secret({ label, value, copyLabel = 'Copy' }: { label: string; value: string; copyLabel?: string }) {
  const id = useId();
  const [copied, setCopied] = useState<string | null>(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('Copied.');
    } catch {
      const input = document.getElementById(id) as HTMLInputElement | null;
      input?.select();
      setCopied('Could not copy by itself: the text is selected, press Ctrl+C (or ⌘C).');
    }
  }
  return (
    <div class="field secret">
      <label for={id}>{label}</label>
      <div class="row">
        <input id={id} value={value} readOnly spellcheck={false} class="mono" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>
          {copyLabel}
        </button>
      </div>
      <p role="status" class="hint">
        {copied}
      </p>
    </div>
  );
}

export function Card({ title, children }: { title: string; children: ComponentChildren }) {
  const id = useId();
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

/** "At least 12 characters.", from the server's passwords.minLength (nothing until it is known). */
export function usePasswordHint(): string | undefined {
  const [min, setMin] = useState<number | null>(null);
  useEffect(() => {
    consoleConfig().then(
      (c) => setMin(c.passwordMinLength),
      () => setMin(null),
    );
  }, []);
  return min === null ? undefined : `At least ${min} characters.`;
}

/**
 * A page's <h1>. After a move inside the console it takes the focus, as a page load would put a screen
 * reader at the top; on the first load the focus is left where the browser (or autofocus) puts it.
 */
export function PageHeading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (takeMoved()) ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

/**
 * A modal dialog (the native <dialog>, opened with showModal: the page behind is inert, so the focus stays
 * inside). Escape or `onClose` closes it, and the focus goes back to what had it before it opened.
 */
export function Dialog({ title, onClose, children, class: className }: { title: string; onClose: () => void; children: ComponentChildren; class?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  const ours = useRef(false);
  const id = useId();
  // Read while rendering, before anything inside takes the focus.
  const [opener] = useState(() => document.activeElement as HTMLElement | null);
  useEffect(() => {
    const dialog = ref.current!;
    dialog.showModal();
    return () => {
      ours.current = true;
      // Closed first: while it is modal, the page behind is inert and cannot take the focus.
      dialog.close();
      opener?.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class={className}
      aria-labelledby={id}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      // The browser may close a modal itself (a cancel it does not let the page refuse, without a recent
      // user gesture): follow it, so the state and the focus stay right.
      onClose={() => {
        if (!ours.current) onClose();
      }}
    >
      <h2 id={id}>{title}</h2>
      {children}
    </dialog>
  );
}
