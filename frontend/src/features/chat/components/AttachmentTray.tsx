import { useEffect, useState } from "react";
import { Icon } from "../../../components/Icon";
import { formatBytes, MAX_ATTACHMENTS } from "../../../lib/attachments";
import type { Uploads } from "../hooks/useUploads";
import type { UploadItem } from "../uploadQueue";
import { FileIcon, FileName } from "./FileBits";

/** Image types a browser shows in an <img> (others get their file icon). */
const PREVIEWABLE = /^image\/(png|jpe?g|gif|webp|avif|bmp|svg\+xml)$/u;

/** An object URL for a local file while the component shows it, revoked after. */
function useObjectUrl(file: File | null, wanted: boolean): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!file || !wanted) return;
    const u = URL.createObjectURL(file);
    setUrl(u);
    return () => {
      URL.revokeObjectURL(u);
      setUrl(null);
    };
  }, [file, wanted]);
  return url;
}

/**
 * The files attached to the message being written, over the box: a preview of each (the picture
 * itself for a photo), its name and size, its upload's progress, and what can be done with it
 * — cancel while it uploads, remove, retry after a failure with the server's reason shown.
 */
export function AttachmentTray({ uploads }: { uploads: Uploads }) {
  const { items, notice } = uploads;
  if (items.length === 0 && notice === null) return null;
  const done = items.filter((it) => it.status === "done").length;
  return (
    <div className="tray" role="group" aria-label={`Attachments, ${done} of ${items.length} uploaded`}>
      {notice ? (
        <div className="tray__notice" role="alert">
          <span>{notice}</span>
          <button type="button" className="tray__notice-close" onClick={uploads.dismissNotice} aria-label="Dismiss">
            <Icon name="close" />
          </button>
        </div>
      ) : null}
      {/* Said once the counts change (a failure is an alert of its own). */}
      <span className="sr-only" aria-live="polite">
        {items.length > 0 ? `${done} of ${items.length} ${items.length === 1 ? "file" : "files"} uploaded` : ""}
      </span>
      {items.length > 0 ? (
        <ul className="tray__list" aria-label={`${items.length} of at most ${MAX_ATTACHMENTS} files`}>
          {items.map((it) => (
            <TrayItem key={it.key} item={it} uploads={uploads} />
          ))}
        </ul>
      ) : null}
    </div>
  );
}

function TrayItem({ item, uploads }: { item: UploadItem; uploads: Uploads }) {
  const [broken, setBroken] = useState(false);
  const preview = useObjectUrl(item.file, PREVIEWABLE.test(item.type));
  const percent = Math.round(item.progress * 100);
  const busy = item.status === "queued" || item.status === "uploading";
  const size = formatBytes(item.size);
  return (
    <li className={`tray-item is-${item.status}`} data-status={item.status} data-name={item.name}>
      <span className="tray-item__thumb">
        {preview && !broken ? (
          <img src={preview} alt="" onError={() => setBroken(true)} />
        ) : (
          <FileIcon name={item.name} contentType={item.type} size="sm" />
        )}
        {item.status === "done" ? (
          <span className="tray-item__ok" aria-hidden="true">
            <Icon name="check" strokeWidth={3} />
          </span>
        ) : null}
      </span>
      <span className="tray-item__text">
        <FileName name={item.name} className="tray-item__name" />
        {item.status === "failed" ? (
          <span className="tray-item__error" role="alert">
            {item.error}
          </span>
        ) : (
          <span className="tray-item__status">
            {item.status === "queued" ? `Waiting… · ${size}` : item.status === "uploading" ? `${percent}% of ${size}` : size}
          </span>
        )}
      </span>
      <span className="tray-item__actions">
        <button
          type="button"
          className="tray-item__btn"
          onClick={() => (busy ? uploads.cancel(item.key) : uploads.remove(item.key))}
          aria-label={busy ? `Cancel uploading ${item.name}` : `Remove ${item.name}`}
          title={busy ? "Cancel upload" : "Remove"}
        >
          <Icon name="close" />
        </button>
        {item.status === "failed" ? (
          <button type="button" className="tray-item__btn is-retry" onClick={() => uploads.retry(item.key)} aria-label={`Retry uploading ${item.name}`} title="Retry">
            <Icon name="retry" />
          </button>
        ) : null}
      </span>
      {busy ? (
        <span
          className="tray-item__progress"
          role="progressbar"
          aria-label={`Uploading ${item.name}`}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent}
        >
          <span style={{ transform: `scaleX(${item.progress})` }} />
        </span>
      ) : null}
    </li>
  );
}
