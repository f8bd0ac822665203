import { useEffect, useRef, useState, type CSSProperties, type KeyboardEvent, type MouseEvent } from "react";
import { createPortal } from "react-dom";
import { Icon } from "../../../components/Icon";
import { keepTabInside } from "../../../components/Modal";
import { formatBytes, type Photo } from "../../../lib/attachments";

type Props = {
  photos: Photo[];
  start: number;
  onClose: () => void;
};

/**
 * A message's photos full size, over everything. The photo's box is reserved from its size and
 * shows the thumbnail until the full picture arrives. Escape, the close button or a click
 * beside the photo close it; the arrows (buttons or keys) go through the message's photos;
 * Tab stays inside, and the focus goes back where it was on closing.
 */
export function Lightbox({ photos, start, onClose }: Props) {
  const [index, setIndex] = useState(() => Math.min(Math.max(0, start), photos.length - 1));
  const root = useRef<HTMLDivElement>(null);
  const closeRef = useRef<HTMLButtonElement>(null);
  const [loaded, setLoaded] = useState<string | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const photo = photos[index];
  const count = photos.length;

  useEffect(() => {
    const opener = document.activeElement;
    // The app behind is out of reach while the photo is open: no focus, no clicks, not read out.
    const app = document.getElementById("root");
    app?.setAttribute("inert", "");
    closeRef.current?.focus();
    return () => {
      app?.removeAttribute("inert");
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, []);

  if (!photo) return null;
  const go = (step: number) => setIndex((i) => (i + step + count) % count);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      onClose();
    } else if (count > 1 && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
      e.preventDefault();
      go(e.key === "ArrowRight" ? 1 : -1);
    } else {
      keepTabInside(e, root.current);
    }
  };

  // A click on the dark space around the photo closes; on the photo or the controls it does not.
  const onBackdrop = (e: MouseEvent<HTMLDivElement>) => {
    const t = e.target as HTMLElement;
    if (t === e.currentTarget || t.classList.contains("lightbox__stage")) onClose();
  };

  const style = {
    "--ratio": `${photo.width / photo.height}`,
    "--natural-width": `${photo.width}px`,
    backgroundImage: loaded === photo.id ? undefined : `url("${photo.thumbnail_url}")`,
  } as CSSProperties;

  return createPortal(
    <div
      className="lightbox"
      role="dialog"
      aria-modal="true"
      aria-label={count > 1 ? `Photo ${index + 1} of ${count}: ${photo.name}` : `Photo: ${photo.name}`}
      ref={root}
      onKeyDown={onKeyDown}
      onClick={onBackdrop}
    >
      <div className="lightbox__bar">
        <div className="lightbox__title">
          <span className="lightbox__name" dir="auto">
            {photo.name}
          </span>
          <span className="lightbox__info">
            {count > 1 ? `${index + 1} of ${count} · ` : ""}
            {photo.width} × {photo.height} · {formatBytes(photo.size)}
          </span>
        </div>
        <a className="lightbox__btn" href={photo.url} download={photo.name} aria-label={`Download ${photo.name}`} title="Download">
          <Icon name="download" />
        </a>
        <button type="button" className="lightbox__btn" ref={closeRef} onClick={onClose} aria-label="Close photo" title="Close (Esc)">
          <Icon name="close" />
        </button>
      </div>
      <div className="lightbox__stage">
        {count > 1 ? (
          <button type="button" className="lightbox__nav is-prev" onClick={() => go(-1)} aria-label="Previous photo">
            <Icon name="back" />
          </button>
        ) : null}
        <img
          key={photo.id}
          className="lightbox__img"
          src={photo.url}
          alt={photo.name}
          width={photo.width}
          height={photo.height}
          style={style}
          onLoad={() => setLoaded(photo.id)}
          onError={() => setFailed(photo.id)}
        />
        {failed === photo.id ? (
          <p className="lightbox__error" role="alert">
            Couldn't load the full photo. Its link may have expired: open the conversation again.
          </p>
        ) : null}
        {count > 1 ? (
          <button type="button" className="lightbox__nav is-next" onClick={() => go(1)} aria-label="Next photo">
            <Icon name="forward" />
          </button>
        ) : null}
      </div>
    </div>,
    document.body,
  );
}
