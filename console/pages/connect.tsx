import { useEffect, useState } from 'preact/hooks';
import { api, call, consoleConfig, href, type User } from '../api';
import { deviceName } from '../device';
import { takeCode, takeLandingCode } from '../fragment';
import { Button, Field, Outcome, PageHeading, useAction } from '../ui';

type Targets = { appUrl: string | null; webUrl: string | null };

/** Signed in: a QR code for the host's app and the two buttons, each hidden when its URL is not configured. */
function Connected({ user }: { user: User }) {
  const [targets, setTargets] = useState<Targets | null>(null);
  const [qr, setQr] = useState<string | null>(null);
  const action = useAction();
  useEffect(() => {
    void action.run(async () => {
      const config = await consoleConfig();
      setTargets(config);
      if (config.appUrl) {
        // Loaded only here: the sign-in page stays small.
        const { toString } = await import('qrcode');
        const svg = await toString(config.appUrl, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
        // An <img> of the SVG: no markup of ours in the page, nothing the CSP refuses (img-src allows data:).
        setQr(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`);
      }
    });
  }, []);
  return (
    <section class="card" aria-labelledby="connected">
      <h2 id="connected">You're connected</h2>
      <p>
        This browser is signed in as <strong>{user.name ?? user.username}</strong>.
      </p>
      {qr && (
        <figure class="qr">
          <img src={qr} width={200} height={200} alt="QR code that opens the app on your phone" />
          <figcaption>Scan with your phone's camera to open the app.</figcaption>
        </figure>
      )}
      <div class="actions">
        {targets?.appUrl && (
          <a class="button primary" href={targets.appUrl}>
            Open in app
          </a>
        )}
        {targets?.webUrl && (
          <a class="button" href={targets.webUrl}>
            Open web player
          </a>
        )}
      </div>
      <Outcome problem={action.problem} />
    </section>
  );
}

/** /connect: redeems the link's code (already out of the address bar), or offers a code box. */
export function ConnectPage() {
  const [code] = useState(takeLandingCode);
  const [typed, setTyped] = useState('');
  const [user, setUser] = useState<User | null>(null);
  const action = useAction();
  const redeem = (value: string) =>
    action.run(async () => {
      const answer = await call(api.POST('/api/v1/auth/connect', { body: { code: value, device: { kind: 'browser', name: deviceName(navigator.userAgent) } } }));
      setUser(answer.user);
    });
  useEffect(() => {
    document.title = 'Connect · Usher';
    if (code) void redeem(code);
    // A link pasted into this tab while the page is open changes only the fragment: no new page load.
    const onHash = () => {
      const next = takeCode();
      if (next) void redeem(next);
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  return (
    <main class="narrow">
      <PageHeading>Connect this device</PageHeading>
      {user ? (
        <Connected user={user} />
      ) : (
        <form
          class="card"
          aria-label="Enter your code"
          onSubmit={(e) => {
            e.preventDefault();
            void redeem(typed);
          }}
        >
          {code && action.busy ? (
            <p role="status">Checking your invite…</p>
          ) : (
            <>
              <p>Type the code you were sent. Capitals, spaces and dashes do not matter.</p>
              <Field label="Code" value={typed} onValue={setTyped} autoComplete="one-time-code" autoCapitalize="characters" spellcheck={false} required class="mono" />
              <Button type="submit" class="primary" busy={action.busy} busyLabel="Connecting…">
                Connect
              </Button>
            </>
          )}
          <Outcome problem={action.problem} />
        </form>
      )}
      <p class="center">
        <a href={href('/login')}>Sign in with a password instead</a>
      </p>
    </main>
  );
}
