/** Dashboard DOM lookup: every element the views need exists in index.html, so a missing one is a build bug, said by name. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`dashboard: #${id} missing from index.html`);
  return element as T;
}
