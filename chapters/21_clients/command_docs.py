"""COMMAND DOCS: what each command does, since when, how fast, and its arguments.

Part of chapter 21. Redis 7 builds its command table, and these docs, from
one JSON file per command; here each command is one line of `DOCS` below:
its group, the Redis version that introduced it, its cost here, a summary,
and its syntax as a user reads it in the documentation ("SET key value
[NX | XX] [GET] [EX seconds | PX milliseconds]"). `arguments()` turns
the syntax into the argument tree COMMAND DOCS answers, with Redis's
argument types:

    key, pattern, integer, double, unix-time, string   a value
    pure-token                                         a word alone (NX)
    oneof                                              one of [a | b]
    block                                              a group (LIMIT offset count)

and its flags: optional ([...]) and multiple (x [x ...]). A word in
capitals is a token; the value after it gets the token (EX seconds);
a lower-case word is a value, typed by its name (`VALUE_TYPES`).

The tests check that every command of the server has its line, that the
syntax parses, and that since and group are Redis's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# group | since | complexity | summary | syntax (the name first; a subcommand as "CONFIG GET")
DOCS_TEXT = """
string | 2.0.0 | O(1) | Append a value to the string at a key | APPEND key value
string | 1.0.0 | O(1) | Subtract one from the integer at a key | DECR key
string | 1.0.0 | O(1) | Subtract a number from the integer at a key | DECRBY key decrement
string | 1.0.0 | O(1) | The string at a key | GET key
string | 6.2.0 | O(1) | The string at a key, then delete the key | GETDEL key
string | 6.2.0 | O(1) | The string at a key, and set or remove its time to live | GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]
string | 2.4.0 | O(N) where N is the length of the part returned | A part of the string at a key | GETRANGE key start end
string | 1.0.0 | O(1) | Set a string and return the one it replaced | GETSET key value
string | 1.0.0 | O(1) | Add one to the integer at a key | INCR key
string | 1.0.0 | O(1) | Add a number to the integer at a key | INCRBY key increment
string | 2.6.0 | O(1) | Add a number to the floating point number at a key | INCRBYFLOAT key increment
string | 1.0.0 | O(N) where N is the number of keys | The strings at several keys | MGET key [key ...]
string | 1.0.1 | O(N) where N is the number of keys | Set several keys | MSET key value [key value ...]
string | 1.0.1 | O(N) where N is the number of keys | Set several keys, only if none exists | MSETNX key value [key value ...]
string | 2.6.0 | O(1) | Set a string with a time to live in milliseconds | PSETEX key milliseconds value
string | 1.0.0 | O(1) | Set the string at a key | SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
string | 2.0.0 | O(1) | Set a string with a time to live in seconds | SETEX key seconds value
string | 1.0.0 | O(1) | Set a string only if the key does not exist | SETNX key value
string | 2.2.0 | O(1), then O(M) to copy a value of M bytes | Overwrite a part of the string at a key | SETRANGE key offset value
string | 2.2.0 | O(1) | The length of the string at a key | STRLEN key
string | 1.0.0 | O(N) where N is the length of the part returned | A part of the string at a key (GETRANGE's old name) | SUBSTR key start end
generic | 6.2.0 | O(N) for a collection of N elements, O(1) for a string | Copy a key's value to another key | COPY source destination [DB destination-db] [REPLACE]
generic | 1.0.0 | O(N) where N is the number of keys; O(M) to free a collection of M elements | Delete keys | DEL key [key ...]
generic | 1.0.0 | O(N) where N is the number of keys | How many of the keys exist | EXISTS key [key ...]
generic | 1.0.0 | O(1) | Set a key's time to live in seconds | EXPIRE key seconds [NX | XX | GT | LT]
generic | 1.2.0 | O(1) | Set a key's expiry as a Unix time in seconds | EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
generic | 7.0.0 | O(1) | A key's expiry as a Unix time in seconds | EXPIRETIME key
generic | 1.0.0 | O(N) where N is the number of keys | The keys that match a pattern | KEYS pattern
generic | 2.2.0 | O(1) | Remove a key's time to live | PERSIST key
generic | 2.6.0 | O(1) | Set a key's time to live in milliseconds | PEXPIRE key milliseconds [NX | XX | GT | LT]
generic | 2.6.0 | O(1) | Set a key's expiry as a Unix time in milliseconds | PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
generic | 7.0.0 | O(1) | A key's expiry as a Unix time in milliseconds | PEXPIRETIME key
generic | 2.6.0 | O(1) | A key's time to live in milliseconds | PTTL key
generic | 1.0.0 | O(1) | A key picked at random | RANDOMKEY
generic | 1.0.0 | O(1) | Rename a key | RENAME key newkey
generic | 1.0.0 | O(1) | Rename a key, only if the new name is free | RENAMENX key newkey
generic | 2.8.0 | O(1) per call, O(N) for a whole iteration | Iterate over the keys | SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
generic | 3.2.1 | O(N) where N is the number of keys | How many of the keys exist, counting them as used | TOUCH key [key ...]
generic | 1.0.0 | O(1) | A key's time to live in seconds | TTL key
generic | 1.0.0 | O(1) | The type of a key's value | TYPE key
generic | 4.0.0 | O(1) per key; large values are freed by the worker thread | Delete keys, freeing large values in the background | UNLINK key [key ...]
generic | 2.2.3 | Depends on subcommand. | A container for object introspection commands | OBJECT
generic | 2.2.3 | O(1) | The encoding of a key's value | OBJECT ENCODING key
generic | 4.0.0 | O(1) | A key's access frequency (with an LFU policy) | OBJECT FREQ key
generic | 6.2.0 | O(1) | Help on the OBJECT subcommands | OBJECT HELP
list | 6.2.0 | O(1) | Pop from one list, push to another, or wait for an element | BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout:double
list | 7.0.0 | O(N+M) where N is the number of keys and M the elements popped | Pop from the first non-empty list, or wait | BLMPOP timeout:double numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
list | 2.0.0 | O(N) where N is the number of keys | Pop the first element of the first non-empty list, or wait | BLPOP key [key ...] timeout:double
list | 2.0.0 | O(N) where N is the number of keys | Pop the last element of the first non-empty list, or wait | BRPOP key [key ...] timeout:double
list | 2.2.0 | O(1) | Pop from one list's tail, push to another's head, or wait | BRPOPLPUSH source destination timeout:double
list | 1.0.0 | O(N) where N is the number of elements to skip | The element at an index of a list | LINDEX key index
list | 2.2.0 | O(N) where N is the number of elements before the pivot | Insert an element before or after another | LINSERT key <BEFORE | AFTER> pivot element
list | 1.0.0 | O(1) | The length of a list | LLEN key
list | 6.2.0 | O(1) | Pop from one list, push to another | LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>
list | 7.0.0 | O(N+M) where N is the number of keys and M the elements popped | Pop from the first non-empty list | LMPOP numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
list | 1.0.0 | O(N) where N is the number of elements popped | Pop elements from a list's head | LPOP key [count]
list | 6.0.6 | O(N) where N is the length of the list | The positions of an element in a list | LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
list | 1.0.0 | O(N) where N is the number of elements pushed | Push elements to a list's head | LPUSH key element [element ...]
list | 2.2.0 | O(N) where N is the number of elements pushed | Push to a list's head, if the list exists | LPUSHX key element [element ...]
list | 1.0.0 | O(S+N) where S is the distance to the start and N the elements returned | A range of a list's elements | LRANGE key start stop
list | 1.0.0 | O(N) where N is the length of the list | Remove elements equal to a value | LREM key count element
list | 1.0.0 | O(N) where N is the number of elements to skip | Set the element at an index | LSET key index element
list | 1.0.0 | O(N) where N is the number of elements removed | Keep only a range of a list | LTRIM key start stop
list | 1.0.0 | O(N) where N is the number of elements popped | Pop elements from a list's tail | RPOP key [count]
list | 1.2.0 | O(1) | Pop from one list's tail, push to another's head | RPOPLPUSH source destination
list | 1.0.0 | O(N) where N is the number of elements pushed | Push elements to a list's tail | RPUSH key element [element ...]
list | 2.2.0 | O(N) where N is the number of elements pushed | Push to a list's tail, if the list exists | RPUSHX key element [element ...]
hash | 2.0.0 | O(N) where N is the number of fields | Delete fields of a hash | HDEL key field [field ...]
hash | 2.0.0 | O(1) | Whether a field exists in a hash | HEXISTS key field
hash | 2.0.0 | O(1) | The value of a field | HGET key field
hash | 2.0.0 | O(N) where N is the size of the hash | Every field and value of a hash | HGETALL key
hash | 2.0.0 | O(1) | Add a number to the integer in a field | HINCRBY key field increment
hash | 2.6.0 | O(1) | Add a number to the floating point number in a field | HINCRBYFLOAT key field increment:double
hash | 2.0.0 | O(N) where N is the size of the hash | The fields of a hash | HKEYS key
hash | 2.0.0 | O(1) | The number of fields of a hash | HLEN key
hash | 2.0.0 | O(N) where N is the number of fields | The values of several fields | HMGET key field [field ...]
hash | 2.0.0 | O(N) where N is the number of fields | Set several fields (HSET's old form) | HMSET key field value [field value ...]
hash | 6.2.0 | O(N) where N is the number of fields returned | Fields picked at random | HRANDFIELD key [count [WITHVALUES]]
hash | 2.8.0 | O(1) per call, O(N) for a whole iteration | Iterate over a hash's fields and values | HSCAN key cursor [MATCH pattern] [COUNT count]
hash | 2.0.0 | O(N) where N is the number of fields | Set fields of a hash | HSET key field value [field value ...]
hash | 2.0.0 | O(1) | Set a field only if it does not exist | HSETNX key field value
hash | 3.2.0 | O(1) | The length of a field's value | HSTRLEN key field
hash | 2.0.0 | O(N) where N is the size of the hash | The values of a hash | HVALS key
set | 1.0.0 | O(N) where N is the number of members added | Add members to a set | SADD key member [member ...]
set | 1.0.0 | O(1) | The number of members of a set | SCARD key
set | 1.0.0 | O(N) where N is the total size of the sets | The members of the first set not in the others | SDIFF key [key ...]
set | 1.0.0 | O(N) where N is the total size of the sets | Store the members of the first set not in the others | SDIFFSTORE destination key [key ...]
set | 1.0.0 | O(N*M) where N is the smallest set's size and M the number of sets | The members every set has | SINTER key [key ...]
set | 7.0.0 | O(N*M) where N is the smallest set's size and M the number of sets | How many members every set has | SINTERCARD numkeys key [key ...] [LIMIT limit]
set | 1.0.0 | O(N*M) where N is the smallest set's size and M the number of sets | Store the members every set has | SINTERSTORE destination key [key ...]
set | 1.0.0 | O(1) | Whether a value is a member of a set | SISMEMBER key member
set | 1.0.0 | O(N) where N is the size of the set | Every member of a set | SMEMBERS key
set | 6.2.0 | O(N) where N is the number of values | Whether each value is a member | SMISMEMBER key member [member ...]
set | 1.0.0 | O(1) | Move a member from one set to another | SMOVE source destination member
set | 1.0.0 | O(N) where N is the number of members popped | Remove and return members picked at random | SPOP key [count]
set | 1.0.0 | O(N) where N is the number of members returned | Members picked at random | SRANDMEMBER key [count]
set | 1.0.0 | O(N) where N is the number of members removed | Remove members of a set | SREM key member [member ...]
set | 2.8.0 | O(1) per call, O(N) for a whole iteration | Iterate over a set's members | SSCAN key cursor [MATCH pattern] [COUNT count]
set | 1.0.0 | O(N) where N is the total size of the sets | The members of any of the sets | SUNION key [key ...]
set | 1.0.0 | O(N) where N is the total size of the sets | Store the members of any of the sets | SUNIONSTORE destination key [key ...]
sorted-set | 7.0.0 | O(K)+O(M*log(N)) where K is the number of keys and M the members popped | Pop from the first non-empty sorted set, or wait | BZMPOP timeout:double numkeys key [key ...] <MIN | MAX> [COUNT count]
sorted-set | 5.0.0 | O(log(N)) | Pop the highest member of the first non-empty sorted set, or wait | BZPOPMAX key [key ...] timeout:double
sorted-set | 5.0.0 | O(log(N)) | Pop the lowest member of the first non-empty sorted set, or wait | BZPOPMIN key [key ...] timeout:double
sorted-set | 1.2.0 | O(log(N)) per member | Add members with their scores, or change their scores | ZADD key [NX | XX] [GT | LT] [CH] [INCR] score:double member [score:double member ...]
sorted-set | 1.2.0 | O(1) | The number of members of a sorted set | ZCARD key
sorted-set | 2.0.0 | O(log(N)) | How many members have a score in a range | ZCOUNT key min:double max:double
sorted-set | 6.2.0 | O(L + (N-K)log(N)) where L is the total size of the sets | The members of the first sorted set not in the others | ZDIFF numkeys key [key ...] [WITHSCORES]
sorted-set | 6.2.0 | O(L + (N-K)log(N)) where L is the total size of the sets | Store the members of the first sorted set not in the others | ZDIFFSTORE destination numkeys key [key ...]
sorted-set | 1.2.0 | O(log(N)) | Add a number to a member's score | ZINCRBY key increment:double member
sorted-set | 6.2.0 | O(N*K)+O(M*log(M)) where N is the smallest set's size, K the number of sets | The members every sorted set has | ZINTER numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]
sorted-set | 7.0.0 | O(N*K) where N is the smallest set's size and K the number of sets | How many members every sorted set has | ZINTERCARD numkeys key [key ...] [LIMIT limit]
sorted-set | 2.0.0 | O(N*K)+O(M*log(M)) where N is the smallest set's size, K the number of sets | Store the members every sorted set has | ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE <SUM | MIN | MAX>]
sorted-set | 2.8.9 | O(log(N)) | How many members are in a range of names | ZLEXCOUNT key min max
sorted-set | 7.0.0 | O(K)+O(M*log(N)) where K is the number of keys and M the members popped | Pop from the first non-empty sorted set | ZMPOP numkeys key [key ...] <MIN | MAX> [COUNT count]
sorted-set | 6.2.0 | O(N) where N is the number of members | The scores of several members | ZMSCORE key member [member ...]
sorted-set | 5.0.0 | O(log(N)*M) where M is the number of members popped | Pop the highest members | ZPOPMAX key [count]
sorted-set | 5.0.0 | O(log(N)*M) where M is the number of members popped | Pop the lowest members | ZPOPMIN key [count]
sorted-set | 1.0.0 | O(log(N)+M) where M is the number of members returned | The book's query: members from a score and a name on, with an offset | ZQUERY key score:double name offset limit
sorted-set | 6.2.0 | O(N) where N is the number of members returned | Members picked at random | ZRANDMEMBER key [count [WITHSCORES]]
sorted-set | 1.2.0 | O(log(N)+M) where M is the number of members returned | Members in a range of ranks, scores or names | ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
sorted-set | 2.8.9 | O(log(N)+M) where M is the number of members returned | Members in a range of names | ZRANGEBYLEX key min max [LIMIT offset count]
sorted-set | 1.0.5 | O(log(N)+M) where M is the number of members returned | Members in a range of scores | ZRANGEBYSCORE key min:double max:double [WITHSCORES] [LIMIT offset count]
sorted-set | 6.2.0 | O(log(N)+M) where M is the number of members stored | Store the members in a range | ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
sorted-set | 2.0.0 | O(log(N)) | A member's rank, lowest score first | ZRANK member-key:key member
sorted-set | 1.2.0 | O(M*log(N)) where M is the number of members removed | Remove members | ZREM key member [member ...]
sorted-set | 2.8.9 | O(log(N)+M) where M is the number of members removed | Remove the members in a range of names | ZREMRANGEBYLEX key min max
sorted-set | 2.0.0 | O(log(N)+M) where M is the number of members removed | Remove the members in a range of ranks | ZREMRANGEBYRANK key start stop
sorted-set | 1.2.0 | O(log(N)+M) where M is the number of members removed | Remove the members in a range of scores | ZREMRANGEBYSCORE key min:double max:double
sorted-set | 1.2.0 | O(log(N)+M) where M is the number of members returned | Members in a range of ranks, highest score first | ZREVRANGE key start stop [WITHSCORES]
sorted-set | 2.8.9 | O(log(N)+M) where M is the number of members returned | Members in a range of names, in reverse order | ZREVRANGEBYLEX key max min [LIMIT offset count]
sorted-set | 2.2.0 | O(log(N)+M) where M is the number of members returned | Members in a range of scores, highest first | ZREVRANGEBYSCORE key max:double min:double [WITHSCORES] [LIMIT offset count]
sorted-set | 2.0.0 | O(log(N)) | A member's rank, highest score first | ZREVRANK key member
sorted-set | 2.8.0 | O(1) per call, O(N) for a whole iteration | Iterate over a sorted set's members and scores | ZSCAN key cursor [MATCH pattern] [COUNT count]
sorted-set | 1.2.0 | O(1) | A member's score | ZSCORE key member
sorted-set | 6.2.0 | O(N)+O(M*log(M)) where N is the total size of the sets | The members of any of the sorted sets | ZUNION numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]
sorted-set | 2.0.0 | O(N)+O(M*log(M)) where N is the total size of the sets | Store the members of any of the sorted sets | ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE <SUM | MIN | MAX>]
pubsub | 2.0.0 | O(N) where N is the number of patterns | Subscribe to channels matching patterns | PSUBSCRIBE pattern [pattern ...]
pubsub | 2.0.0 | O(N+M) where N is the number of subscribers and M of patterns | Post a message to a channel | PUBLISH channel message
pubsub | 2.0.0 | O(N) where N is the number of patterns | Unsubscribe from patterns | PUNSUBSCRIBE [pattern [pattern ...]]
pubsub | 7.0.0 | O(N) where N is the number of subscribers | Post a message to a shard channel | SPUBLISH shardchannel message
pubsub | 7.0.0 | O(N) where N is the number of shard channels | Subscribe to shard channels | SSUBSCRIBE shardchannel [shardchannel ...]
pubsub | 2.0.0 | O(N) where N is the number of channels | Subscribe to channels | SUBSCRIBE channel [channel ...]
pubsub | 7.0.0 | O(N) where N is the number of shard channels | Unsubscribe from shard channels | SUNSUBSCRIBE [shardchannel [shardchannel ...]]
pubsub | 2.0.0 | O(N) where N is the number of channels | Unsubscribe from channels | UNSUBSCRIBE [channel [channel ...]]
pubsub | 2.8.0 | Depends on subcommand. | A container for pub/sub introspection commands | PUBSUB
pubsub | 2.8.0 | O(N) where N is the number of channels | The channels with subscribers | PUBSUB CHANNELS [pattern]
pubsub | 6.2.0 | O(1) | Help on the PUBSUB subcommands | PUBSUB HELP
pubsub | 2.8.0 | O(1) | The number of pattern subscriptions | PUBSUB NUMPAT
pubsub | 2.8.0 | O(N) where N is the number of channels | The number of subscribers of channels | PUBSUB NUMSUB [channel [channel ...]]
pubsub | 7.0.0 | O(N) where N is the number of shard channels | The shard channels with subscribers | PUBSUB SHARDCHANNELS [pattern]
pubsub | 7.0.0 | O(N) where N is the number of shard channels | The number of subscribers of shard channels | PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
transactions | 2.0.0 | O(N) where N is the number of commands queued | Drop the commands queued since MULTI | DISCARD
transactions | 1.2.0 | Depends on the commands queued | Run the commands queued since MULTI | EXEC
transactions | 1.2.0 | O(1) | Start a transaction | MULTI
transactions | 2.2.0 | O(1) | Forget the keys watched | UNWATCH
transactions | 2.2.0 | O(1) per key | Make EXEC fail if a key changes first | WATCH key [key ...]
connection | 1.0.0 | O(N) where N is the number of passwords the user has | Authenticate the connection | AUTH [username] password
connection | 1.0.0 | O(1) | Return the message | ECHO message
connection | 6.0.0 | O(1) | Choose the protocol, authenticate, name the connection | HELLO [protover:integer [AUTH username password] [SETNAME clientname]]
connection | 1.0.0 | O(1) | PONG, or the message | PING [message]
connection | 1.0.0 | O(1) | Close the connection | QUIT
connection | 6.2.0 | O(1) | Reset the connection's state | RESET
connection | 1.0.0 | O(1) | Choose a database (0 only here) | SELECT index
connection | 2.4.0 | Depends on subcommand. | A container for client connection commands | CLIENT
connection | 5.0.0 | O(1) | Help on the CLIENT subcommands | CLIENT HELP
connection | 5.0.0 | O(1) | The connection's id | CLIENT ID
connection | 6.2.0 | O(1) | The connection's line of CLIENT LIST | CLIENT INFO
connection | 2.4.0 | O(N) where N is the number of clients | Close connections | CLIENT KILL ip-port | [ID client-id] [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [USER username] [ADDR ip-port] [LADDR ip-port] [SKIPME <YES | NO>] [MAXAGE maxage]
connection | 2.4.0 | O(N) where N is the number of clients | The connections and their state | CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]
connection | 2.6.9 | O(1) | The connection's name | CLIENT GETNAME
connection | 7.0.0 | O(1) | Let the client be evicted or not (no eviction here) | CLIENT NO-EVICT <ON | OFF>
connection | 2.9.50 | O(N) where N is the number of clients paused | Pause the clients' commands | CLIENT PAUSE timeout [WRITE | ALL]
connection | 3.2.0 | O(1) | Turn replies off, on, or skip the next one | CLIENT REPLY <ON | OFF | SKIP>
connection | 2.6.9 | O(1) | Name the connection | CLIENT SETNAME connection-name
connection | 7.2.0 | O(1) | Tell the server the client library's name or version | CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
connection | 5.0.0 | O(log N) where N is the number of blocked clients | Unblock a blocked client | CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
connection | 6.2.0 | O(N) where N is the number of clients paused | End a pause | CLIENT UNPAUSE
server | 1.0.0 | O(1) | Rewrite the append-only file in the background | BGREWRITEAOF
server | 1.0.0 | O(1) | Save a snapshot in the background | BGSAVE [SCHEDULE]
server | 1.0.0 | O(1) | The number of keys | DBSIZE
server | 1.0.0 | O(N) where N is the number of keys, in the background with ASYNC | Delete every key | FLUSHALL [ASYNC | SYNC]
server | 1.0.0 | O(N) where N is the number of keys, in the background with ASYNC | Delete every key of the database | FLUSHDB [ASYNC | SYNC]
server | 1.0.0 | O(1) | Information and statistics about the server | INFO [section [section ...]]
server | 1.0.0 | O(1) | When the last snapshot was saved | LASTSAVE
server | 1.0.0 | O(N) where N is the number of arguments of a command | Every command the server runs, as it runs | MONITOR
server | 1.0.0 | O(N) where N is the number of keys | Save a snapshot now | SAVE
server | 1.0.0 | O(N) where N is the number of keys, if it saves | Stop the server | SHUTDOWN [NOSAVE | SAVE]
server | 2.6.0 | O(1) | The server's time | TIME
server | 2.8.13 | O(N) where N is the number of commands | Describe every command | COMMAND
server | 2.8.13 | O(1) | The number of commands | COMMAND COUNT
server | 7.0.0 | O(N) where N is the number of commands asked about | Documentation of commands | COMMAND DOCS [command-name [command-name ...]]
server | 2.8.13 | O(N) where N is the number of arguments | The keys of a command | COMMAND GETKEYS command arg [arg ...]
server | 7.0.0 | O(N) where N is the number of arguments | The keys of a command, with what it does to each | COMMAND GETKEYSANDFLAGS command arg [arg ...]
server | 5.0.0 | O(1) | Help on the COMMAND subcommands | COMMAND HELP
server | 2.8.13 | O(N) where N is the number of commands asked about | Describe commands | COMMAND INFO [command-name [command-name ...]]
server | 7.0.0 | O(N) where N is the number of commands | The names of the commands | COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]
server | 2.0.0 | Depends on subcommand. | A container for configuration commands | CONFIG
server | 2.0.0 | O(N) where N is the number of settings | Settings that match patterns | CONFIG GET parameter [parameter ...]
server | 5.0.0 | O(1) | Help on the CONFIG subcommands | CONFIG HELP
server | 2.0.0 | O(1) | Reset the statistics INFO reports | CONFIG RESETSTAT
server | 2.8.0 | O(1) | Rewrite the configuration file (there is none here) | CONFIG REWRITE
server | 2.0.0 | O(N) where N is the number of settings | Change settings | CONFIG SET parameter value [parameter value ...]
server | 4.0.0 | Depends on subcommand. | A container for memory commands | MEMORY
server | 4.0.0 | O(1) | Help on the MEMORY subcommands | MEMORY HELP
server | 4.0.0 | O(N) where N is the number of samples | The memory a key and its value take | MEMORY USAGE key [SAMPLES count]
server | 2.2.12 | Depends on subcommand. | A container for slow log commands | SLOWLOG
server | 2.2.12 | O(N) where N is the number of entries | The slow log's last entries | SLOWLOG GET [count]
server | 6.2.0 | O(1) | Help on the SLOWLOG subcommands | SLOWLOG HELP
server | 2.2.12 | O(1) | The number of entries in the slow log | SLOWLOG LEN
server | 2.2.12 | O(N) where N is the number of entries | Empty the slow log | SLOWLOG RESET
server | 6.0.0 | Depends on subcommand. | A container for access list commands | ACL
server | 6.0.0 | O(1) | The categories, or the commands of one | ACL CAT [category]
server | 6.0.0 | O(1) amortized per user | Delete users | ACL DELUSER username [username ...]
server | 7.0.0 | O(1) | Whether a user could run a command | ACL DRYRUN username command [arg [arg ...]]
server | 6.0.0 | O(N) where N is the number of bits asked for | A random password | ACL GENPASS [bits]
server | 6.0.0 | O(N) where N is the number of password, key and channel rules | A user's rules | ACL GETUSER username
server | 6.0.0 | O(1) | Help on the ACL subcommands | ACL HELP
server | 6.0.0 | O(N) where N is the number of users | Every user's rules | ACL LIST
server | 6.0.0 | O(N) where N is the number of users | Load the users from the acl file | ACL LOAD
server | 6.0.0 | O(N) where N is the number of entries | The last refusals | ACL LOG [count | RESET]
server | 6.0.0 | O(N) where N is the number of users | Save the users to the acl file | ACL SAVE
server | 6.0.0 | O(N) where N is the number of rules | Create or change a user | ACL SETUSER username [rule [rule ...]]
server | 6.0.0 | O(N) where N is the number of users | The users' names | ACL USERS
server | 6.0.0 | O(1) | The connection's user | ACL WHOAMI
"""

# A value's type by its name (Redis's argument types); any other is a string.
VALUE_TYPES = {
    "key": "key", "newkey": "key", "source": "key", "destination": "key", "dst": "key", "src": "key",
    "pattern": "pattern", "seconds": "integer", "milliseconds": "integer", "count": "integer", "numkeys": "integer",
    "index": "integer", "start": "integer", "stop": "integer", "end": "integer", "offset": "integer",
    "increment": "integer", "decrement": "integer", "cursor": "integer", "rank": "integer", "num-matches": "integer",
    "len": "integer", "limit": "integer", "timeout": "double", "unix-time-seconds": "unix-time",
    "unix-time-milliseconds": "unix-time", "client-id": "integer", "maxage": "integer", "destination-db": "integer",
    "bits": "integer", "index-db": "integer",
}  # fmt: skip


@dataclass
class Argument:
    name: str
    type: str
    token: str = ""
    optional: bool = False
    multiple: bool = False
    arguments: list[Argument] = field(default_factory=list)


@dataclass
class CommandDoc:
    name: str  # "get", or "config|get" for a subcommand
    group: str
    since: str
    complexity: str
    summary: str
    arguments: list[Argument]
    subcommands: list[CommandDoc] = field(default_factory=list)


TOKEN = re.compile(r"[\[\]<>|]|\.\.\.|[^\s\[\]<>|]+")


def parse_syntax(words: list[str]) -> list[Argument]:
    """The argument tree of a syntax's words (after the command's name)."""
    arguments, _ = parse_sequence(words, 0, closing=None)
    return arguments


def parse_sequence(words: list[str], at: int, closing: str | None) -> tuple[list[Argument], int]:
    """Arguments until `closing` (or the end), with `a | b` alternatives folded into a oneof."""
    alternatives: list[list[Argument]] = [[]]
    while at < len(words) and words[at] != closing:
        word = words[at]
        if word == "|":
            alternatives.append([])
            at += 1
        elif word in ("[", "<"):  # an optional group, or a required one (<LEFT | RIGHT>)
            bracket = "]" if word == "[" else ">"
            inner, at = parse_sequence(words, at + 1, bracket)
            at += 1  # the closing bracket
            current = alternatives[-1]
            if words[at - 2] == "..." and len(current) >= len(inner):
                # x [x ...], or key value [key value ...]: the arguments before repeat
                repeated = current[len(current) - len(inner) :]
                del current[len(current) - len(inner) :]
                group = repeated[0] if len(repeated) == 1 else Argument(group_name(repeated), "block", arguments=repeated)
                group.multiple = True
                current.append(group)
                continue
            group = inner[0] if len(inner) == 1 else Argument(group_name(inner), "block", arguments=inner)
            group.optional = bracket == "]"
            current.append(group)
        elif word == "...":
            at += 1
        else:
            alternatives[-1].append(value_or_token(word, words[at + 1] if at + 1 < len(words) else ""))
            at += 2 if alternatives[-1][-1].token and alternatives[-1][-1].type != "pure-token" else 1
    if len(alternatives) == 1:
        return alternatives[0], at
    choices = [alt[0] if len(alt) == 1 else Argument(group_name(alt), "block", arguments=alt) for alt in alternatives]
    return [Argument(group_name(choices, "-or-"), "oneof", arguments=choices)], at


def value_or_token(word: str, following: str) -> Argument:
    """A token alone (NX), a token with its value (EX seconds), or a value."""
    if word.isupper() or not word[0].isalpha():
        if following and following[0].islower():
            value = value_argument(following)
            value.token = word
            return value
        return Argument(word.lower(), "pure-token", token=word)
    return value_argument(word)


def value_argument(word: str) -> Argument:
    name, _, declared = word.partition(":")
    return Argument(name, declared or VALUE_TYPES.get(name, "string"))


def group_name(arguments: list[Argument], joiner: str = "-") -> str:
    """A block is named after its token (AGGREGATE ...: "aggregate") or its first two values; a oneof after its choices."""
    if joiner == "-" and arguments[0].token:
        return arguments[0].token.lower()
    return joiner.join(argument.name for argument in arguments[: None if joiner != "-" else 2])


# --- the reply -----------------------------------------------------------------------------------


def write_docs(out: Any, names: list[bytes]) -> None:
    """COMMAND DOCS [name ...]: a map of each known command to its doc (every command if none is named)."""
    found = [DOCS[name] for name in (names or list(DOCS)) if name in DOCS]
    write_map_header(out, len(found))
    for doc in found:
        out.bulk(doc.name.encode())
        write_doc(out, doc)


def write_doc(out: Any, doc: CommandDoc) -> None:
    fields = [("summary", doc.summary), ("since", doc.since), ("group", doc.group), ("complexity", doc.complexity)]
    extra = [name for name, present in (("arguments", doc.arguments), ("subcommands", doc.subcommands)) if present]
    write_map_header(out, len(fields) + len(extra))
    for name, text in fields:
        out.bulk(name.encode())
        out.bulk(text.encode())
    if doc.arguments:
        out.bulk(b"arguments")
        write_arguments(out, doc.arguments, iter(range(1000)))
    if doc.subcommands:
        out.bulk(b"subcommands")
        write_map_header(out, len(doc.subcommands))
        for sub in doc.subcommands:
            out.bulk(sub.name.encode())
            write_doc(out, sub)


def write_arguments(out: Any, arguments: list[Argument], key_specs: Iterator[int]) -> None:
    """Each argument as a map: name, type, the index of its key spec (keys in order), token, flags, its arguments."""
    out.array(len(arguments))
    for argument in arguments:
        fields: list[tuple[str, object]] = [("name", argument.name), ("type", argument.type)]
        if argument.type == "key":
            fields.append(("key_spec_index", next(key_specs)))
        if argument.token:
            fields.append(("token", argument.token))
        flags = [flag for flag, on in (("optional", argument.optional), ("multiple", argument.multiple)) if on]
        if flags:
            fields.append(("flags", flags))
        write_map_header(out, len(fields) + bool(argument.arguments))
        for name, value in fields:
            out.bulk(name.encode())
            if isinstance(value, int):
                out.integer(value)
            elif isinstance(value, list):
                out.array(len(value))
                for flag in value:
                    out.simple(flag)
            else:
                out.bulk(str(value).encode())
        if argument.arguments:
            out.bulk(b"arguments")
            write_arguments(out, argument.arguments, key_specs)


def write_map_header(out: Any, pairs: int) -> None:
    """A map in RESP3, a flat array of keys and values in RESP2 (as Redis's addReplyMapLen)."""
    if out.protocol == 3:
        out.map(pairs)
    else:
        out.array(2 * pairs)


def document(text: str) -> None:
    """Add lines as DOCS_TEXT's to DOCS (a server built on this one
    documents its own commands so). A line whose command already has one,
    followed by a word in capitals, is a subcommand of that container
    (CONFIG, then CONFIG GET ...): only a container has more than one line."""
    for line in text.strip().splitlines():
        group, since, complexity, summary, syntax = (part.strip() for part in line.split("|", 4))
        words = TOKEN.findall(syntax)
        parent = words[0].lower()
        if parent.encode() in DOCS and len(words) > 1 and words[1].isupper():
            name, rest = f"{parent}|{words[1].lower()}", words[2:]
            DOCS[parent.encode()].subcommands.append(CommandDoc(name, group, since, complexity, summary, parse_syntax(rest)))
        else:
            DOCS[parent.encode()] = CommandDoc(parent, group, since, complexity, summary, parse_syntax(words[1:]))


DOCS: dict[bytes, CommandDoc] = {}  # name -> its doc, a container's with its subcommands
document(DOCS_TEXT)
