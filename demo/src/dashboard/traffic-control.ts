/**
 * The dashboard's "Generate traffic" card: simulated shoppers produce a
 * chosen number of events at a chosen rate from this page, through the same
 * SDK producer a real page uses, and the card shows sent/acknowledged.
 */
import type { ActivityEvent } from '../activity.ts';
import { TrafficSimulation } from '../traffic/simulation.ts';
import { runTraffic, type TrafficProgress } from '../traffic/traffic-run.ts';
import { formatCount } from './activity-view.ts';
import { byId } from './dom.ts';

function input(id: string): HTMLInputElement {
  const element = document.getElementById(id);
  if (!(element instanceof HTMLInputElement)) throw new Error(`dashboard: input #${id} missing`);
  return element;
}

export class TrafficControl {
  private readonly status = byId('traffic-status');
  private readonly bar = byId('traffic-bar');
  private readonly button = byId<HTMLButtonElement>('traffic-button');
  private runs = 0;

  constructor(private readonly send: (event: ActivityEvent) => Promise<unknown>) {
    document.getElementById('traffic-form')!.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.start();
    });
  }

  private async start(): Promise<void> {
    const users = Math.max(1, Math.floor(input('traffic-users').valueAsNumber || 1));
    const maxEvents = Math.max(1, Math.floor(input('traffic-events').valueAsNumber || 1));
    const ratePerSec = Math.max(1, input('traffic-rate').valueAsNumber || 1);
    const run = ++this.runs;
    this.button.disabled = true;
    this.status.dataset.state = 'running';
    const show = (p: TrafficProgress): void => {
      this.bar.style.width = `${(p.acked / maxEvents) * 100}%`;
      this.status.textContent = `${formatCount(p.sent)} sent · ${formatCount(p.acked)} acknowledged`
        + (p.failed > 0 ? ` · ${formatCount(p.failed)} failed` : '') + (p.done ? ' · done' : ` · ${formatCount(p.ackedPerSec)}/s`);
      this.status.dataset.acked = String(p.acked);
    };
    try {
      const seed = (Date.now() + run) % 2 ** 31;
      const result = await runTraffic({
        simulation: new TrafficSimulation({ users, seed, userPrefix: `web${seed.toString(36)}` }),
        send: this.send,
        ratePerSec,
        maxEvents,
        onProgress: show,
      });
      show(result);
      this.status.dataset.state = result.failed > 0 ? 'failed' : 'done';
    } catch (error) {
      this.status.textContent = `traffic failed: ${(error as Error).message}`;
      this.status.dataset.state = 'failed';
    } finally {
      this.button.disabled = false;
    }
  }
}
