import { useLayoutEffect, useRef, useState } from "react";
import { fileBadge, fileKind, fitName } from "../../../lib/attachments";

/** A file's icon: a tile coloured by its kind with its extension on it ("PDF", "ZIP"). */
export function FileIcon({ name, contentType, size = "md" }: { name: string; contentType: string; size?: "sm" | "md" }) {
  const label = fileBadge(name);
  return (
    <span className={`file-icon file-icon--${fileKind(name, contentType)} file-icon--${size} ${label.length > 3 ? "is-long" : ""}`} aria-hidden="true">
      <span className="file-icon__fold" />
      <span className="file-icon__label">{label}</span>
    </span>
  );
}

let measureContext: CanvasRenderingContext2D | null | undefined;

/** Text widths in an element's font, from a canvas that is never shown. */
function textMeasure(el: HTMLElement): ((text: string) => number) | null {
  if (measureContext === undefined) measureContext = document.createElement("canvas").getContext("2d");
  const ctx = measureContext;
  if (!ctx) return null;
  const s = getComputedStyle(el);
  ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
  return (text) => ctx.measureText(text).width;
}

/**
 * A file name that, short of room, is cut in the middle and keeps its end with the extension
 * ("very-long-name…2026.pdf"): as much as the box's width allows, measured in its font, and
 * again whenever the box changes size. One run of text, so nothing gapes around the "…". A
 * screen reader hears the whole name; the whole name is also the tooltip.
 */
export function FileName({ name, className }: { name: string; className?: string }) {
  const ref = useRef<HTMLSpanElement>(null);
  const [shown, setShown] = useState(name);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const fit = () => {
      // Not laid out (hidden, or not in a page): nothing to measure against.
      const width = el.clientWidth;
      if (width <= 0) return;
      const measure = textMeasure(el);
      if (measure) setShown(fitName(name, width, measure));
    };
    fit();
    if (typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(fit);
    ro.observe(el);
    return () => ro.disconnect();
  }, [name]);

  return (
    <span className={`file-name ${className ?? ""}`} title={name}>
      <span className="sr-only">{name}</span>
      <span className="file-name__shown" ref={ref} aria-hidden="true" dir="auto">
        {shown}
      </span>
    </span>
  );
}
