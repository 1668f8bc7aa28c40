"""Rooms, memberships, messages and what hangs off them. One module per concern."""

from rooms.models.integrations import Integration, IntegrationHistory
from rooms.models.messages import Mention, Message, MessageEdit, MessageReport, Reaction, Star
from rooms.models.rooms import Membership, Room
from rooms.models.teams import Team
from rooms.models.uploads import Upload

__all__ = ["Integration", "IntegrationHistory", "Mention", "Membership", "Message", "MessageEdit", "MessageReport",
           "Reaction", "Room", "Star", "Team", "Upload"]
