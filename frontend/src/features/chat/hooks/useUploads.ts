import { useCallback, useEffect, useReducer, useRef } from "react";
import type { Upload } from "../../../api/types";
import { useServices } from "../../../lib/services";
import { uploadErrorText, uploadFile, type UploadHandle } from "../../../lib/uploads";
import { canSend, emptyQueue, queueReducer, readyUploads, toStart, waitingFor, type UploadItem } from "../uploadQueue";

export type Uploads = {
  items: UploadItem[];
  notice: string | null;
  /** Adds files (from the picker, a drop or a paste); each starts uploading at once. */
  add: (files: readonly File[], skipped?: number) => void;
  cancel: (key: string) => void;
  remove: (key: string) => void;
  retry: (key: string) => void;
  dismissNotice: () => void;
  /** Forgets every file (after sending them). */
  clear: () => void;
  canSend: (body: string) => boolean;
  ready: () => Upload[];
  /** Why Send waits, if it does. */
  waitingFor: string | null;
};

const NOTICE_MS = 8000;
let nextKey = 1;

/** A pasted screenshot is called "image.png": give it a name that tells it from the next one. */
export function pastedName(file: Pick<File, "name" | "type">, now = new Date()): string {
  if (file.name && file.name !== "image.png") return file.name;
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}.${pad(now.getMinutes())}.${pad(now.getSeconds())}`;
  const ext = file.type === "image/jpeg" ? "jpg" : (file.type.split("/")[1] ?? "png");
  return `Pasted image ${stamp}.${ext}`;
}

/**
 * The composer's attachments: the upload queue's state, with the uploads it asks for running
 * (a few at a time, over XMLHttpRequest for their progress). Uploads still running when the
 * conversation closes are cancelled.
 */
export function useUploads(): Uploads {
  const { session } = useServices();
  const [q, dispatch] = useReducer(queueReducer, emptyQueue);
  const running = useRef(new Map<string, UploadHandle>());

  // Start what the queue says may start.
  useEffect(() => {
    for (const key of toStart(q)) {
      const item = q.items.find((it) => it.key === key);
      if (!item?.file || running.current.has(key)) continue;
      dispatch({ type: "start", key });
      const handle = uploadFile(item.file, item.name, {
        session,
        onProgress: (fraction) => dispatch({ type: "progress", key, fraction }),
      });
      running.current.set(key, handle);
      handle.done
        .then((upload) => dispatch({ type: "done", key, upload }))
        .catch((err: unknown) => {
          if (err instanceof DOMException && err.name === "AbortError") return;
          dispatch({ type: "fail", key, error: uploadErrorText(err) });
        })
        .finally(() => {
          if (running.current.get(key) === handle) running.current.delete(key);
        });
    }
  }, [q, session]);

  useEffect(() => {
    if (q.notice === null) return;
    const t = window.setTimeout(() => dispatch({ type: "dismiss-notice" }), NOTICE_MS);
    return () => window.clearTimeout(t);
  }, [q.notice]);

  useEffect(() => {
    const handles = running.current;
    return () => {
      for (const h of handles.values()) h.abort();
      handles.clear();
    };
  }, []);

  const add = useCallback((list: readonly File[], skipped = 0) => {
    const added = list.map((file) => ({ key: `u${nextKey++}`, name: file.name, size: file.size, type: file.type, file }));
    dispatch({ type: "add", files: added, skipped });
  }, []);

  const stop = (key: string) => {
    running.current.get(key)?.abort();
    running.current.delete(key);
  };
  const cancel = useCallback((key: string) => {
    stop(key);
    dispatch({ type: "cancel", key });
  }, []);
  const remove = useCallback((key: string) => {
    stop(key);
    dispatch({ type: "remove", key });
  }, []);
  const retry = useCallback((key: string) => dispatch({ type: "retry", key }), []);
  const dismissNotice = useCallback(() => dispatch({ type: "dismiss-notice" }), []);
  const clear = useCallback(() => {
    for (const key of [...running.current.keys()]) stop(key);
    dispatch({ type: "clear" });
  }, []);

  return {
    items: q.items,
    notice: q.notice,
    add,
    cancel,
    remove,
    retry,
    dismissNotice,
    clear,
    canSend: (body) => canSend(q, body),
    ready: () => readyUploads(q),
    waitingFor: waitingFor(q),
  };
}
