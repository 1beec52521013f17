/**
 * The small Runnel badge in the corner of every shop page: connection state
 * and how many events wait in the outbox (unacknowledged), so offline
 * buffering is visible: go offline, click around, watch it grow and drain.
 */
export class StatusBadge {
  private readonly root: HTMLElement;
  private readonly label: HTMLElement;
  private readonly outbox: HTMLElement;

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
    this.root.append(dot, this.label, this.outbox);
    parent.append(this.root);
    this.update('connecting', 0);
  }

  update(state: string, outboxSize: number): void {
    this.root.dataset.state = state;
    this.label.textContent = `Runnel ${state}`;
    this.outbox.textContent = `outbox ${outboxSize}`;
    this.outbox.dataset.pending = String(outboxSize > 0);
    this.outbox.dataset.size = String(outboxSize);
  }
}
