// Sign in, sign up, a magic link, single sign-on: GoTrue's flows through supabase-js.
import type { SupabaseClient } from '@supabase/supabase-js';
import { useState } from 'preact/hooks';

export function AuthScreen({ supabase }: { supabase: SupabaseClient }) {
  const [mode, setMode] = useState<'in' | 'up'>('in');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  const run = async (work: () => Promise<string | null>) => {
    setBusy(true);
    setMessage(null);
    try {
      const text = await work();
      if (text) setMessage({ text, error: false });
    } catch (e) {
      setMessage({ text: e instanceof Error ? e.message : String(e), error: true });
    } finally {
      setBusy(false);
    }
  };

  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      if (mode === 'in') {
        const { error } = await supabase.auth.signInWithPassword({ email, password });
        if (error) throw error;
        return null;
      }
      const { data, error } = await supabase.auth.signUp({ email, password });
      if (error) throw error;
      return data.session ? null : 'Check your inbox to confirm your address.';
    });
  };

  const magicLink = () =>
    run(async () => {
      if (!email) throw new Error('Enter your email first.');
      const { error } = await supabase.auth.signInWithOtp({
        email,
        options: { emailRedirectTo: location.origin, shouldCreateUser: false },
      });
      if (error) throw error;
      return `A sign-in link is on its way to ${email}.`;
    });

  const sso = () =>
    run(async () => {
      const domain = email.split('@')[1];
      if (!domain) throw new Error('Enter your work email first: its domain finds your company.');
      const { data, error } = await supabase.auth.signInWithSSO({ domain, options: { redirectTo: location.origin } });
      if (error) throw error;
      if (data?.url) location.assign(data.url);
      return null;
    });

  return (
    <main class="auth" id="main">
      <h1>Tally</h1>
      <p class="lead">Log work as it comes to you.</p>
      <form onSubmit={submit} aria-labelledby="auth-title">
        <h2 id="auth-title">{mode === 'in' ? 'Sign in' : 'Create your account'}</h2>
        <label>
          Email
          <input type="email" name="email" autocomplete="email" required value={email}
            onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" required minLength={mode === 'up' ? 8 : undefined}
            autocomplete={mode === 'in' ? 'current-password' : 'new-password'} value={password}
            onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'in' ? 'Sign in' : 'Sign up'}
        </button>
        <div class="row">
          <button type="button" onClick={magicLink} disabled={busy}>Email me a link</button>
          <button type="button" onClick={sso} disabled={busy}>Single sign-on</button>
        </div>
        {message && (
          <p role={message.error ? 'alert' : 'status'} class={message.error ? 'error' : 'note'}>
            {message.text}
          </p>
        )}
      </form>
      <p>
        {mode === 'in' ? 'New here? ' : 'Have an account? '}
        <button type="button" class="link" onClick={() => setMode(mode === 'in' ? 'up' : 'in')}>
          {mode === 'in' ? 'Create an account' : 'Sign in instead'}
        </button>
      </p>
    </main>
  );
}
