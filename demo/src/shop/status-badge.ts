/**
 * The small Runnel badge in the corner of every shop page: connection state
 * how many events wait in the outbox (unacknowledged), so offline
 * buffering is visible (go offline, click around, watch it grow and drain),
 * and how many events this tab session produced.
 */
export class StatusBadge {
  private readonly root: HTMLElement;
  private readonly label: HTMLElement;
  private readonly outbox: HTMLElement;
  private readonly tracked: HTMLElement;

  constructor(parent: HTMLElement = document.body) {
    this.root = document.createElement('a');
    this.root.className = 'runnel-badge';
    this.root.setAttribute('href', '/');
    this.root.setAttribute('target', '_blank');
    this.root.setAttribute('title', 'Runnel connection (opens the live dashboard)');
    this.root.dataset.testid = 'runnel-badge';
    this.root.style.textDecoration = 'none';
    const dot = document.createElement('span');
    dot.className = 'dot';
    this.label = document.createElement('span');
    this.outbox = document.createElement('span');
    this.outbox.className = 'outbox';
    this.outbox.dataset.testid = 'outbox-size';
    this.tracked = document.createElement('span');
    this.tracked.className = 'outbox';
    this.root.append(dot, this.label, this.outbox, this.tracked);
    parent.append(this.root);
    this.update('connecting', 0, 0);
  }

  /** How the page reaches the client: 'shared' (SharedWorker), 'dedicated' (Worker) or 'page'. */
  setMode(mode: string): void {
    this.root.dataset.mode = mode;
    this.root.title = `Runnel via ${mode === 'shared' ? 'a SharedWorker (one connection for all tabs)' : mode === 'dedicated' ? 'a dedicated Worker' : 'this page'}; opens the live dashboard`;
  }

  /** `outboxSize`: unacknowledged records of this origin; `tracked`: events this tab session produced. */
  update(state: string, outboxSize: number, tracked: number): void {
    this.root.dataset.state = state;
    this.root.dataset.tracked = String(tracked);
    this.label.textContent = `Runnel ${state}`;
    this.outbox.textContent = `outbox ${outboxSize}`;
    this.outbox.dataset.pending = String(outboxSize > 0);
    this.outbox.dataset.size = String(outboxSize);
    this.tracked.textContent = `${tracked} sent`;
  }
}
