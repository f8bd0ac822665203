import { useState, type CSSProperties } from "react";
import type { Attachment } from "../../../api/types";
import { Icon } from "../../../components/Icon";
import { fitBox, formatBytes, gridLayout, isPhoto, PHOTO_LIMITS, type Photo } from "../../../lib/attachments";
import { FileIcon, FileName } from "./FileBits";

/** Photos are never narrower than this in a bubble that also has text or files. */
const WITH_TEXT_MIN_WIDTH = 240;
/** Several photos share a grid this wide (or the bubble's width on a small screen). */
const GRID_WIDTH = 320;
/** Files alone: cards this wide. */
const FILES_WIDTH = 300;

/** Splits attachments into the photos shown inline and the files shown as cards. */
export function splitAttachments(list: readonly Attachment[]): { photos: Photo[]; files: Attachment[] } {
  const photos: Photo[] = [];
  const files: Attachment[] = [];
  for (const a of list) {
    if (isPhoto(a)) photos.push(a);
    else files.push(a);
  }
  return { photos, files };
}

/** How wide a bubble with these attachments is, before any text wraps in it. */
export function mediaWidth(photos: readonly Photo[], files: readonly Attachment[], withText: boolean): number {
  const first = photos[0];
  if (photos.length === 1 && first) {
    const box = fitBox(first.width, first.height, withText || files.length > 0 ? { ...PHOTO_LIMITS, minWidth: WITH_TEXT_MIN_WIDTH } : PHOTO_LIMITS);
    return box.width;
  }
  if (photos.length > 1) return GRID_WIDTH;
  return FILES_WIDTH;
}

type Props = {
  photos: Photo[];
  files: Attachment[];
  /** The bubble has text too (a single photo is then at least as wide as a readable line). */
  withText: boolean;
  onOpen: (index: number) => void;
};

/** A message's photos (one fitted to its shape, or several in a grid) and its file cards. */
export function MessageAttachments({ photos, files, withText, onOpen }: Props) {
  return (
    <>
      {photos.length > 0 ? <Photos photos={photos} wide={withText || files.length > 0} onOpen={onOpen} /> : null}
      {files.length > 0 ? (
        <ul className="msg-files" aria-label={files.length === 1 ? "File" : `${files.length} files`}>
          {files.map((f) => (
            <li key={f.id}>
              <FileCard file={f} />
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
}

function Photos({ photos, wide, onOpen }: { photos: Photo[]; wide: boolean; onOpen: (index: number) => void }) {
  const first = photos[0];
  if (photos.length === 1 && first) {
    // The box is known before the photo loads (its size comes with the message): nothing
    // below it moves when it arrives.
    const box = fitBox(first.width, first.height, wide ? { ...PHOTO_LIMITS, minWidth: WITH_TEXT_MIN_WIDTH } : PHOTO_LIMITS);
    const style: CSSProperties = { width: box.width, aspectRatio: `${box.width} / ${box.height}` };
    return (
      <div className="media media--single" style={style} data-box={`${box.width}x${box.height}`}>
        <PhotoTile photo={first} label={`Open photo ${first.name}`} onOpen={() => onOpen(0)} />
      </div>
    );
  }
  const g = gridLayout(photos.length);
  const style: CSSProperties = {
    width: GRID_WIDTH,
    aspectRatio: `${g.columns} / ${g.rows}`,
    gridTemplateColumns: `repeat(${g.columns}, minmax(0, 1fr))`,
    gridTemplateRows: `repeat(${g.rows}, minmax(0, 1fr))`,
  };
  return (
    <div className="media media--grid" style={style} role="group" aria-label={`${photos.length} photos`}>
      {photos.map((p, i) => (
        <PhotoTile
          key={p.id}
          photo={p}
          label={`Open photo ${i + 1} of ${photos.length}, ${p.name}`}
          style={i === 0 && g.firstSpan > 1 ? { gridColumn: `span ${g.firstSpan}` } : undefined}
          onOpen={() => onOpen(i)}
        />
      ))}
    </div>
  );
}

function PhotoTile({ photo, label, style, onOpen }: { photo: Photo; label: string; style?: CSSProperties; onOpen: () => void }) {
  const [state, setState] = useState<"loading" | "loaded" | "broken">("loading");
  return (
    <button type="button" className={`media__tile is-${state}`} style={style} onClick={onOpen} aria-label={label} title={photo.name}>
      {state === "broken" ? (
        <span className="media__broken">
          <Icon name="image" />
          <span>Photo unavailable</span>
        </span>
      ) : (
        <img
          src={photo.thumbnail_url}
          alt=""
          width={photo.width}
          height={photo.height}
          decoding="async"
          draggable={false}
          onLoad={() => setState("loaded")}
          onError={() => setState("broken")}
        />
      )}
    </button>
  );
}

/**
 * A file: its icon, its name (cut in the middle when long) and size, and a download link whose
 * click area covers the whole card. The link's name says it all ("Download report.pdf, 2.3 MB").
 */
export function FileCard({ file }: { file: Attachment }) {
  const size = formatBytes(file.size);
  return (
    <div className="file-card">
      <FileIcon name={file.name} contentType={file.content_type} />
      <span className="file-card__text">
        <FileName name={file.name} className="file-card__name" />
        <span className="file-card__size">{size}</span>
      </span>
      <a className="file-card__download" href={file.url} download={file.name} aria-label={`Download ${file.name}, ${size}`} title="Download">
        <Icon name="download" />
      </a>
    </div>
  );
}
