// Starts the app: the service worker (the shell offline after the first visit), the config
// Tally serves (the anon key), supabase-js, and the screens.
import { render } from 'preact';
import { connect, loadConfig } from './api';
import { App } from './app';
import './style.css';

if ('serviceWorker' in navigator) {
  void navigator.serviceWorker.register('/sw.js', { scope: '/' });
}

const root = document.getElementById('app')!;
loadConfig()
  .then((config) => render(<App supabase={connect(location.origin, config)} config={config} />, root))
  .catch((e: unknown) => {
    root.innerHTML = '';
    const p = document.createElement('p');
    p.setAttribute('role', 'alert');
    p.textContent = e instanceof Error ? e.message : String(e);
    root.append(p);
  });
