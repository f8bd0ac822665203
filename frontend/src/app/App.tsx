import { ErrorBoundary } from "../components/ErrorBoundary";
import { AppProvider } from "./provider";
import { AppRouter } from "./router";
import { ErrorPage } from "./routes/not-found";

export function App() {
  return (
    <ErrorBoundary
      fallback={(_error, reset) => (
        <ErrorPage
          title="Something went wrong"
          text="The app hit an unexpected error. Reloading usually fixes it; your messages are safe on the server."
          action={
            <button
              type="button"
              className="btn btn--primary"
              onClick={() => {
                reset();
                window.location.reload();
              }}
            >
              Reload
            </button>
          }
        />
      )}
    >
      <AppProvider>
        <AppRouter />
      </AppProvider>
    </ErrorBoundary>
  );
}
