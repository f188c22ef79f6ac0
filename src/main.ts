// Entry point of the web app: mounts the Svelte UI. The GPU lives in the engine worker (src/worker/).
import { mount } from 'svelte';
import App from './ui/App.svelte';
import './ui/app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');

export default mount(App, { target });
