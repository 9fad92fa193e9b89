import { chromiumPath } from './browser';

test('a missing browser is an error saying to run make tools, never a skip', () => {
  const saved = { ...process.env };
  try {
    process.env.PUBFLOW_CHROMIUM_PATH = '/nonexistent/chromium';
    expect(() => chromiumPath()).toThrow(/PUBFLOW_CHROMIUM_PATH=\/nonexistent\/chromium does not exist.*make tools/);
  } finally {
    process.env = saved;
  }
});
