/**
 * Every shop page runs this: it connects to Runnel (through the SharedWorker,
 * so all of the shop's tabs share one WebSocket and one IndexedDB outbox),
 * tracks the page view, clicks, scroll depth and cart actions as typed
 * activity events keyed by userId, renders the catalog and cart, and shows
 * the status badge (connection state, outbox size).
 */
import { activityTopic, type ActivityEvent } from '../activity.ts';
import { brokerEndpoint } from '../broker-endpoint.ts';
import { Cart } from './cart.ts';
import { productById } from './catalog.ts';
import { loadIdentity } from './identity.ts';
import { renderCart, renderCartCount, renderProductGrids } from './render.ts';
import { connectShop } from './shop-connection.ts';
import { StatusBadge } from './status-badge.ts';
import { Tracker } from './tracker.ts';

/** The badge re-reads the outbox size this often (an SDK call, cheap). */
const BADGE_REFRESH_MS = 500;
/** Events this tab session produced (shown on the badge). */
const TRACKED_COUNT_KEY = 'runnel-demo:tracked';

/** `/shop/` and `/shop` are the home page too. */
function pagePath(): string {
  const path = location.pathname;
  return path.endsWith('/') ? `${path}index.html` : path === '/shop' ? '/shop/index.html' : path;
}

async function main(): Promise<void> {
  const badge = new StatusBadge();
  const cart = new Cart();
  let tracked = Number(sessionStorage.getItem(TRACKED_COUNT_KEY) ?? 0);
  const connection = await connectShop(brokerEndpoint(location.origin).webSocketUrl);
  badge.setMode(connection.mode);
  const refreshBadge = async (): Promise<void> => {
    badge.update(await connection.state(), await connection.outboxSize(), tracked);
  };
  connection.onStateChange(() => void refreshBadge());
  setInterval(() => void refreshBadge(), BADGE_REFRESH_MS);

  const tracker = new Tracker({
    identity: loadIdentity(),
    path: pagePath(),
    send: (event: ActivityEvent) => connection.send(activityTopic, event, event.userId),
    onTracked: () => {
      sessionStorage.setItem(TRACKED_COUNT_KEY, String(++tracked));
      void refreshBadge();
    },
    onError: (error) => console.error('runnel: event not produced', error),
  });
  tracker.instrument();
  void tracker.pageView();

  renderProductGrids();
  renderCartCount(cart);
  wireProductPage(cart, tracker);
  wireCartPage(cart, tracker);
  void refreshBadge();
}

function wireProductPage(cart: Cart, tracker: Tracker): void {
  const button = document.querySelector<HTMLButtonElement>('[data-add-to-cart]');
  const product = productById(button?.dataset.addToCart ?? '');
  if (!button || !product) return;
  const quantityInput = document.querySelector<HTMLInputElement>('[data-quantity]');
  button.addEventListener('click', () => {
    const quantity = Math.min(9, Math.max(1, Math.floor(quantityInput?.valueAsNumber || 1)));
    cart.add(product.id, quantity);
    renderCartCount(cart);
    document.querySelector<HTMLElement>('[data-added]')?.removeAttribute('hidden');
    void tracker.track('add_to_cart', { productId: product.id, priceCents: product.priceCents, quantity });
  });
}

function wireCartPage(cart: Cart, tracker: Tracker): void {
  if (!document.querySelector('[data-cart]')) return;
  const rerender = (): void => {
    renderCart(cart, (productId) => {
      cart.remove(productId);
      rerender();
    });
    renderCartCount(cart);
  };
  rerender();
  document.querySelector('[data-checkout]')?.addEventListener('click', () => {
    const items = cart.itemCount();
    if (items === 0) return;
    void tracker.track('checkout', { items, totalCents: cart.totalCents() });
    cart.clear();
    rerender();
    document.querySelector<HTMLElement>('[data-checked-out]')?.removeAttribute('hidden');
  });
}

main().catch((error: unknown) => console.error('runnel demo shop failed to start', error));
