/**
 * The console's entry: one API client for the page's life, the app mounted on #root.
 */

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiClient } from './api/client.js';
import { App } from './app.js';
import './styles.css';

const root = document.getElementById('root');
if (root === null) throw new Error('#root is missing from index.html');
createRoot(root).render(
  <StrictMode>
    <App api={new ApiClient()} />
  </StrictMode>,
);
