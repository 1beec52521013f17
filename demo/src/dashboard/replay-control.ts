/**
 * The dashboard's "Replay" card: picks a start time (a preset or a chosen
 * date and time) and asks the consumer to re-read the stream from it.
 */
import { byId } from './dom.ts';

export class ReplayControl {
  private readonly select = byId<HTMLSelectElement>('replay-from');
  private readonly time = byId<HTMLInputElement>('replay-time');
  private readonly button = byId<HTMLButtonElement>('replay-button');
  private readonly status = byId<HTMLElement>('replay-status');

  /** `replay(fromTimestampMs)`: 0 = from the beginning of the log. */
  constructor(private readonly replay: (fromTimestampMs: number) => Promise<void>) {
    this.select.addEventListener('change', () => {
      this.time.hidden = this.select.value !== 'custom';
      if (!this.time.hidden && !this.time.value) this.time.value = toLocalInput(Date.now() - 10 * 60_000);
    });
    byId('replay-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.start();
    });
  }

  private chosenTimestampMs(): number {
    if (this.select.value === 'custom') {
      const chosen = new Date(this.time.value).getTime();
      return Number.isFinite(chosen) ? chosen : Date.now();
    }
    const agoMs = Number(this.select.value);
    return agoMs === 0 ? 0 : Date.now() - agoMs;
  }

  private async start(): Promise<void> {
    const from = this.chosenTimestampMs();
    this.button.disabled = true;
    this.status.dataset.state = 'running';
    this.status.textContent = from === 0 ? 'Replaying from the beginning…' : `Replaying from ${new Date(from).toLocaleString()}…`;
    try {
      await this.replay(from);
      this.status.textContent = from === 0 ? 'Counting from the beginning of the log.' : `Counting from ${new Date(from).toLocaleString()}.`;
      this.status.dataset.state = 'done';
    } catch (error) {
      this.status.textContent = `Replay failed: ${(error as Error).message}`;
      this.status.dataset.state = 'failed';
    } finally {
      this.button.disabled = false;
    }
  }
}

/** Date → the value format of `<input type="datetime-local">` in local time. */
function toLocalInput(ms: number): string {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 19);
}
