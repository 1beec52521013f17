/**
 * The shop's dynamic parts: product grids (home, product list), the cart
 * page and the cart counter in the header, all from the catalog and Cart.
 */
import type { Cart } from './cart.ts';
import { formatPrice, products, shopPaths } from './catalog.ts';

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function renderProductGrids(): void {
  for (const grid of document.querySelectorAll<HTMLElement>('[data-product-grid]')) {
    const limit = Number(grid.dataset.limit ?? products.length);
    grid.replaceChildren(...products.slice(0, limit).map((product) => {
      const card = element('a', 'product-card');
      card.href = shopPaths.product(product.id);
      card.dataset.track = `product-card:${product.id}`;
      const tile = element('div', 'tile', product.mark);
      tile.style.setProperty('--tile', product.color);
      const meta = element('div', 'meta');
      meta.append(element('h3', '', product.name), element('span', 'price', formatPrice(product.priceCents)));
      card.append(tile, meta);
      return card;
    }));
  }
}

export function renderCartCount(cart: Cart): void {
  const count = String(cart.itemCount());
  for (const badge of document.querySelectorAll('[data-cart-count]')) badge.textContent = count;
}

export function renderCart(cart: Cart, onRemove: (productId: string) => void): void {
  const container = document.querySelector<HTMLElement>('[data-cart]');
  if (!container) return;
  const lines = cart.lines();
  const total = document.querySelector('[data-cart-total]');
  if (total) total.textContent = formatPrice(cart.totalCents());
  const checkout = document.querySelector<HTMLButtonElement>('[data-checkout]');
  if (checkout) checkout.disabled = lines.length === 0;
  if (lines.length === 0) {
    container.replaceChildren(element('p', 'cart-empty', 'Your cart is empty.'));
    return;
  }
  container.replaceChildren(...lines.map(({ product, quantity }) => {
    const line = element('div', 'cart-line');
    const tile = element('div', 'tile', product.mark);
    tile.style.setProperty('--tile', product.color);
    const remove = element('button', '', 'Remove');
    remove.type = 'button';
    remove.dataset.track = `remove:${product.id}`;
    remove.addEventListener('click', () => onRemove(product.id));
    line.append(tile, element('strong', '', `${product.name} × ${quantity}`), element('span', '', formatPrice(product.priceCents * quantity)), remove);
    return line;
  }));
}
