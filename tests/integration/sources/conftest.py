"""Session-scoped throwaway database servers for the database source tests (they take seconds to start)."""

from __future__ import annotations

import pytest

from tests.integration.servers.mariadb import MariaDB, remove_socket_folder, start_mariadb
from tests.integration.servers.postgres import Postgres, start_postgres, stop_postgres
from tests.support import need_binary

SHOP_SQL = r"""
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, photo BLOB) ENGINE=InnoDB;
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, total DECIMAL(10,2),
  FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB;
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(200)) ENGINE=InnoDB;
CREATE TABLE secrets_cache (id INT PRIMARY KEY, token VARCHAR(40)) ENGINE=InnoDB;
INSERT INTO customers (name, photo) VALUES ('Zoë Ångström', UNHEX('00FF10E2809C0D0A5C27')), ('山田太郎', NULL),
  ('O''Brien; DROP TABLE x', REPEAT(UNHEX('DEADBEEF'), 5000));
INSERT INTO orders (customer_id, total) VALUES (1, 10.50), (2, 99.99), (3, 0.01);
INSERT INTO secrets_cache VALUES (1, 'not for backup');
CREATE VIEW big_orders AS SELECT c.name, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.total > 5;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (note) VALUES (CONCAT('order ', NEW.id));
CREATE PROCEDURE customer_count(OUT total INT) SELECT COUNT(*) INTO total FROM customers;
CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE id < 0;
"""

LEGACY_SQL = r"""
CREATE DATABASE legacy CHARACTER SET utf8mb4;
USE legacy;
CREATE TABLE visits (id INT PRIMARY KEY, page VARCHAR(100)) ENGINE=MyISAM;
CREATE TABLE users (id INT PRIMARY KEY, login VARCHAR(50)) ENGINE=InnoDB;
INSERT INTO visits VALUES (1, '/home'), (2, '/ünïcode');
INSERT INTO users VALUES (1, 'root'), (2, 'ana');
"""


def seed_mariadb(server: MariaDB) -> None:
    server.sql(SHOP_SQL)
    server.sql(LEGACY_SQL)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory) -> MariaDB:
    """A MariaDB with binary logging on, seeded with ``shop`` (InnoDB) and ``legacy`` (MyISAM + InnoDB)."""
    need_binary("mariadbd")
    need_binary("mariadb-install-db")
    server = start_mariadb(tmp_path_factory.mktemp("mariadb1"), name="db1")
    seed_mariadb(server)
    yield server
    server.stop()
    remove_socket_folder(server)


@pytest.fixture(scope="session")
def mariadb_second(tmp_path_factory) -> MariaDB:
    """A second instance, binary logging off, for MY_INSTANCES (reached by its socket)."""
    need_binary("mariadbd")
    server = start_mariadb(tmp_path_factory.mktemp("mariadb2"), name="db2", is_binlog_on=False)
    server.sql("CREATE DATABASE inventory; CREATE TABLE inventory.items (sku VARCHAR(20) PRIMARY KEY, qty INT) ENGINE=InnoDB;"
               "INSERT INTO inventory.items VALUES ('A-1', 3), ('B-2', 0);")
    yield server
    server.stop()
    remove_socket_folder(server)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Postgres:
    """A PostgreSQL 15 run as an unprivileged user, password auth on TCP, seeded with two databases."""
    server = start_postgres()
    yield server
    stop_postgres(server)
