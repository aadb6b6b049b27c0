import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBatonClient } from '@baton/client';
import { BatonProvider } from '@baton/client/react';
import { App } from './App';
import './styles.css';

// One client for the page, outside React: StrictMode renders twice, the session must not.
const client = createBatonClient();
// Hot reload replaces this module: release the old client's timers, listeners and channel.
import.meta.hot?.dispose(() => {
  client.dispose();
});
const root = document.getElementById('root');
if (root === null) throw new Error('#root is missing from index.html');

createRoot(root).render(
  <StrictMode>
    <BatonProvider client={client}>
      <App />
    </BatonProvider>
  </StrictMode>,
);
