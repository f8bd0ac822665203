import { useEffect, type ReactNode } from "react";
import { Link } from "../../lib/router";

export function NotFoundRoute() {
  useEffect(() => {
    document.title = "Not found · Let's Chat";
  }, []);
  return <ErrorPage title="Page not found" text="There's nothing at this address. It may have moved, or the link is wrong." />;
}

export function ErrorPage({ title, text, action }: { title: string; text: string; action?: ReactNode }) {
  return (
    <main className="error-page">
      <div className="error-page__card">
        <div className="error-page__code" aria-hidden="true">
          {title === "Page not found" ? "404" : "!"}
        </div>
        <h1>{title}</h1>
        <p>{text}</p>
        {action ?? (
          <Link to="/" className="btn btn--primary">
            Go to your chats
          </Link>
        )}
      </div>
    </main>
  );
}
