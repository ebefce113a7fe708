import { render } from 'preact';
import { App } from './app';
import { initTheme } from './theme';
import './styles.css';

initTheme();
const root = document.getElementById('app');
if (root) render(<App />, root);
