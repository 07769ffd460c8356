#!/bin/sh
# A scripted stand-in for a coding agent. A real plan runs an AI coding CLI here; this one reads
# its task from the environment streams sets and writes the code it would have written.
set -e
echo "agent for stream $STREAMS_STREAM, task $STREAMS_TASK_INDEX: $STREAMS_TASK"
echo "prompt file: $STREAMS_PROMPT_FILE"
# Pretend to think for a moment, so the streams visibly run side by side.
sleep 1
case "$STREAMS_STREAM/$STREAMS_TASK_INDEX" in
db/1)
    cat > src/db/schema.sql <<'SQL'
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
);
SQL
    # Agents may commit their own work...
    git add src/db/schema.sql
    git commit -q -m "db: create the users table"
    ;;
db/2)
    # ...or leave it for streams to commit.
    echo "CREATE INDEX users_email ON users (email);" >> src/db/schema.sql
    ;;
api/1)
    # A dependent stream starts from its dependency's integrated work.
    grep -q "CREATE TABLE users" src/db/schema.sql
    cat > src/api/login.py <<'PY'
from db import users


def login(email: str, password: str) -> bool:
    """POST /login: check a user's password."""
    user = users.find_by_email(email)
    return user is not None and user.check_password(password)
PY
    ;;
ui/1)
    cat > src/ui/login.html <<'HTML'
<form method="post" action="/login">
  <input name="email" type="email" required>
  <input name="password" type="password" required>
  <button>Log in</button>
</form>
HTML
    ;;
docs/1)
    cat > docs/login.md <<'MD'
# Logging in

The form in `src/ui/login.html` posts to `/login` (`src/api/login.py`), which checks the
password against the `users` table (`src/db/schema.sql`).
MD
    ;;
*)
    echo "nothing scripted for $STREAMS_STREAM task $STREAMS_TASK_INDEX" >&2
    exit 1
    ;;
esac
