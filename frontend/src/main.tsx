import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBatonClient } from '@baton/client';
import { App } from './App';
import { ClientProvider } from './auth';
import './styles.css';

const client = createBatonClient();
const root = document.getElementById('root');
if (root === null) throw new Error('#root is missing from index.html');

createRoot(root).render(
  <StrictMode>
    <ClientProvider client={client}>
      <App />
    </ClientProvider>
  </StrictMode>,
);
