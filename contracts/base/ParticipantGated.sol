// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IParticipantRegistry} from "../interfaces/IParticipantRegistry.sol";
import {Operated} from "./Operated.sol";

/// @title ParticipantGated
/// @notice Base of the contracts that refuse any address which is not an active participant
/// with the role the action needs, and that stop while the platform is paused. The registry is
/// fixed at deployment: swapping it would let an admin re-draw who may act.
abstract contract ParticipantGated is Operated {
    /// @notice The registry consulted on every gated action; also the platform's pause switch.
    IParticipantRegistry public immutable participants;

    constructor(IParticipantRegistry participants_, Administration memory administration) Operated(administration) {
        if (address(participants_) == address(0)) revert ZeroAddress();
        participants = participants_;
    }

    /// @return id The participant id of `account`.
    function _requireParticipant(address account, uint8 roleMask) internal view returns (uint32 id) {
        id = participants.activeId(account, roleMask);
        if (id == 0) revert IParticipantRegistry.ParticipantNotActive(account, roleMask);
    }

    /// @dev Two checks in one call: a transfer's two ends, or an invoice's supplier and buyer.
    function _requireParticipants(address first, uint8 firstMask, address second, uint8 secondMask)
        internal
        view
        returns (uint32 firstId, uint32 secondId)
    {
        (firstId, secondId) = participants.activeIds(first, firstMask, second, secondMask);
        if (firstId == 0) revert IParticipantRegistry.ParticipantNotActive(first, firstMask);
        if (secondId == 0) revert IParticipantRegistry.ParticipantNotActive(second, secondMask);
    }

    /// @dev For the few actions open to anyone, which involve no participant check.
    function _requireNotPaused() internal view {
        if (participants.paused()) revert Pausable.EnforcedPause();
    }
}
