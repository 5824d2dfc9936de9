import { Link } from 'react-router';

export function NotFoundPage() {
  return (
    <div className="page">
      <h1>Nothing here</h1>
      <p>
        This address is not a page of the dashboard. <Link to="/">See the executions</Link>.
      </p>
    </div>
  );
}
