/**
 * The console's pages by path (the server answers each with index.html): history API, no
 * library. Query strings hold a page's filters, so a filtered view can be bookmarked and shared.
 */

import {
  type AnchorHTMLAttributes,
  type MouseEvent,
  type ReactNode,
  useSyncExternalStore,
} from 'react';

/** Where the console lives. */
export const CONSOLE_BASE = '/dicom-server/';

/** The pages. */
export const PAGES = [
  { id: 'dashboard', path: CONSOLE_BASE, title: 'Dashboard' },
  { id: 'associations', path: `${CONSOLE_BASE}associations/`, title: 'Associations' },
  { id: 'config', path: `${CONSOLE_BASE}config/`, title: 'Configuration' },
  { id: 'ae-titles', path: `${CONSOLE_BASE}ae-titles/`, title: 'AE titles' },
  { id: 'transactions', path: `${CONSOLE_BASE}transactions/`, title: 'Transaction log' },
  { id: 'processing', path: `${CONSOLE_BASE}processing/`, title: 'Processing' },
  { id: 'routing', path: `${CONSOLE_BASE}routing/`, title: 'Routing' },
] as const;

export type PageId = (typeof PAGES)[number]['id'];

/** The page at a path, if any (with or without the trailing slash). */
export function pageAt(pathname: string): PageId | undefined {
  const normalized = pathname.endsWith('/') ? pathname : `${pathname}/`;
  return PAGES.find((page) => page.path === normalized)?.id;
}

/** The path of a page. */
export function pathOf(id: PageId): string {
  return PAGES.find((page) => page.id === id)?.path ?? CONSOLE_BASE;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange);
  return () => window.removeEventListener('popstate', onChange);
}

const locationKey = () => `${window.location.pathname}${window.location.search}`;

/** The current location; re-renders when it changes. */
export function useLocation(): { pathname: string; search: string } {
  useSyncExternalStore(subscribe, locationKey);
  return { pathname: window.location.pathname, search: window.location.search };
}

/** Goes to a path in the console (pushState, or replaceState for a filter change). */
export function navigate(to: string, options: { readonly isReplace?: boolean } = {}): void {
  if (to === locationKey()) return;
  if (options.isReplace === true) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & {
  readonly to: string;
  readonly children: ReactNode;
};

/** A link inside the console: no page load; a modified click still opens a new tab. */
export function Link({ to, children, onClick, ...rest }: LinkProps) {
  const handleClick = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey
    ) {
      return;
    }
    event.preventDefault();
    navigate(to);
    // A new page starts at its top; a link to a section is scrolled to by its page.
    if (!to.includes('#')) window.scrollTo(0, 0);
  };
  return (
    <a href={to} onClick={handleClick} {...rest}>
      {children}
    </a>
  );
}
