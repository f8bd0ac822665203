// @vitest-environment jsdom
import { act } from "react";
import { createRoot } from "react-dom/client";
import { describe, expect, it } from "vitest";
import { MessageText } from "./MessageText";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function render(text: string): HTMLElement {
  const host = document.createElement("div");
  const root = createRoot(host);
  act(() => root.render(<MessageText text={text} />));
  return host;
}

describe("MessageText", () => {
  it("renders markup as text, never as HTML", () => {
    const host = render('<img src=x onerror="alert(1)"><b>bold</b><script>alert(2)</script>');
    expect(host.querySelector("img, b, script")).toBeNull();
    expect(host.textContent).toBe('<img src=x onerror="alert(1)"><b>bold</b><script>alert(2)</script>');
  });

  it("makes http(s) links clickable in a new tab without an opener", () => {
    const host = render("look: https://example.com/a?b=1 ok");
    const a = host.querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://example.com/a?b=1");
    expect(a?.getAttribute("target")).toBe("_blank");
    expect(a?.getAttribute("rel")).toContain("noopener");
    expect(a?.getAttribute("rel")).toContain("noreferrer");
    expect(host.textContent).toBe("look: https://example.com/a?b=1 ok");
  });

  it("leaves javascript: alone", () => {
    const host = render("javascript:alert(1)");
    expect(host.querySelector("a")).toBeNull();
  });
});
